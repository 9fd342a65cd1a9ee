/**
 * WebSocket text frames built here once and written as they are to every recipient's socket:
 * `ws` would otherwise build the header and issue a two-buffer write per socket. Server frames
 * are never masked and compression is off, so the bytes are the same for every socket: FIN and
 * opcode 1, then the payload length in 7, 7+16 or 7+64 bits (RFC 6455 §5.2). A unit test reads
 * them back with ws's own Receiver.
 */
const FIN_TEXT = 0x81;

/** Bytes of the header of a frame whose payload is `len` bytes. */
const headerBytes = (len: number): number => (len < 126 ? 2 : len < 65_536 ? 4 : 10);

/** Writes the header of a `len`-byte text frame at `at`; returns where the payload goes. */
function writeHeader(buf: Buffer, at: number, len: number): number {
  buf[at] = FIN_TEXT;
  if (len < 126) {
    buf[at + 1] = len;
    return at + 2;
  }
  if (len < 65_536) {
    buf[at + 1] = 126;
    buf.writeUInt16BE(len, at + 2);
    return at + 4;
  }
  buf[at + 1] = 127;
  buf.writeUInt32BE(Math.floor(len / 2 ** 32), at + 2);
  buf.writeUInt32BE(len >>> 0, at + 6);
  return at + 10;
}

/** A complete WebSocket text frame (header and payload in one Buffer). */
export function textFrame(payload: string | Buffer): Buffer {
  return framesAfter(null, payload);
}

/**
 * `before` (complete frames, shared by many recipients) followed by one more text frame, in one
 * Buffer: a recipient's own frame rides in the same write as the shared ones, without a second
 * write (or a cork) per socket. The payload is encoded straight into place.
 */
export function framesAfter(before: Buffer | null, payload: string | Buffer): Buffer {
  const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const start = before ? before.length : 0;
  const buf = Buffer.allocUnsafe(start + headerBytes(len) + len);
  if (before) before.copy(buf, 0);
  const at = writeHeader(buf, start, len);
  if (typeof payload === 'string') buf.write(payload, at, len, 'utf8');
  else payload.copy(buf, at);
  return buf;
}
