import * as ws from 'ws';

// ws exports its Sender (the frame builder) but @types/ws does not declare it.
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };

const TEXT = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false } as const;

/**
 * A complete WebSocket text frame (header and payload in one Buffer), built once and written
 * as is to every recipient's socket: `ws` would otherwise build the header and issue a two-buffer
 * write per socket. Server frames are never masked and compression is off, so the bytes are the
 * same for every socket.
 */
export function textFrame(payload: string | Buffer): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat(Sender.frame(data, TEXT));
}
