// The one client used against every server. Parley and the ws reference speak
// {"event","data"} JSON frames on /ws; the Socket.IO reference gets the same
// events in Engine.IO/Socket.IO framing (42["event",data]), spoken here over the
// same raw WebSocket, so all three servers are driven by identical client code.
//
// Why a hand-rolled WebSocket client instead of `ws` or socket.io-client: the
// client shares the machine's two cores with the server, and at hundreds of
// thousands of frames per second the client's own per-frame cost decides how
// far the server can be pushed. This one does the RFC 6455 handshake with
// node:http, then parses frames straight off the socket's chunks (several
// frames per read when they queue up) with no stream machinery, and hands the
// payload bytes to the caller without decoding them.
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';

const Q = 0x22; // '"'
const JSON_PREFIX = Buffer.from('{"event":"');
const SIO_PREFIX = Buffer.from('42["');

export const FRAMINGS = {
  json: {
    path: '/ws',
    encode: (event, data) => JSON.stringify({ event, data }),
    prefix: JSON_PREFIX,
    decode: (buf) => JSON.parse(buf),
  },
  sio: {
    path: '/socket.io/?EIO=4&transport=websocket',
    encode: (event, data) => '42' + JSON.stringify([event, data]),
    prefix: SIO_PREFIX,
    decode: (buf) => { const [event, data] = JSON.parse(buf.subarray(2)); return { event, data }; },
  },
};

export class Conn {
  // onFrame(conn, event, buf) is called for every event frame (the hot path:
  // `event` is read straight from the bytes, nothing is parsed).
  constructor(socket, framing, onFrame) {
    this.socket = socket;
    this.f = FRAMINGS[framing];
    this.sio = framing === 'sio';
    this.onFrame = onFrame;
    this.waiters = [];
    this.closeCode = null;
    this.rest = null; // bytes of an incomplete frame
    this.frags = null; // payloads of a fragmented message
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this._chunk(chunk));
    socket.on('close', () => this._closed(this.closeCode ?? 1006));
    socket.on('error', () => {}); // 'close' follows
  }
  send(event, data) { this._frame(1, Buffer.from(this.f.encode(event, data))); }
  decode(buf) { return this.f.decode(buf); }

  // Event name of a frame without parsing it: both framings put it first.
  eventOf(buf) {
    const p = this.f.prefix;
    if (buf.length > p.length && buf.compare(p, 0, p.length, 0, p.length) === 0) {
      const end = buf.indexOf(Q, p.length);
      if (end > 0) return buf.latin1Slice(p.length, end);
    }
    try { return this.decode(buf).event; } catch { return undefined; } // unusual layout: slow path
  }

  // Resolve with the data of the next `event` frame (control plane only).
  next(event, timeoutMs = 30_000) {
    return new Promise((resolve, reject) => {
      const w = { event, resolve, reject, t: setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); reject(new Error(`timeout waiting for ${event}`)); }, timeoutMs) };
      this.waiters.push(w);
    });
  }

  // Client frames must be masked; the all-zero masking key is a valid key and
  // makes masking a no-op (the server unmasks as usual). Fine for a local
  // benchmark client, whose frames no proxy inspects.
  _frame(op, data) {
    const len = data.length;
    const h = len < 126 ? 6 : len < 65536 ? 8 : 14;
    const out = Buffer.allocUnsafe(h + len);
    out[0] = 0x80 | op;
    if (h === 6) out[1] = 0x80 | len;
    else if (h === 8) { out[1] = 0x80 | 126; out.writeUInt16BE(len, 2); }
    else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(len), 2); }
    out.fill(0, h - 4, h);
    data.copy(out, h);
    if (!this.socket.destroyed) this.socket.write(out);
  }

  _chunk(chunk) {
    let b = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = null;
    let off = 0;
    while (b.length - off >= 2) {
      const b0 = b[off], b1 = b[off + 1];
      let len = b1 & 0x7f, h = 2;
      if (len === 126) { if (b.length - off < 4) break; len = b.readUInt16BE(off + 2); h = 4; }
      else if (len === 127) { if (b.length - off < 10) break; len = Number(b.readBigUInt64BE(off + 2)); h = 10; }
      if (b1 & 0x80) h += 4; // servers do not mask; tolerate it (unmasking skipped: not expected)
      if (b.length - off < h + len) break;
      const payload = b.subarray(off + h, off + h + len);
      off += h + len;
      const op = b0 & 0x0f, fin = b0 & 0x80;
      if (op === 1 || op === 2 || op === 0) {
        if (fin && !this.frags) this._data(payload);
        else if (!fin) (this.frags ??= []).push(Buffer.from(payload));
        else { this.frags.push(payload); const whole = Buffer.concat(this.frags); this.frags = null; this._data(whole); }
      } else if (op === 9) this._frame(0x0a, payload); // ping -> pong
      else if (op === 8) {
        this.closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
        this._frame(8, payload.subarray(0, 2));
        this.socket.end();
      }
    }
    if (off < b.length) this.rest = b.subarray(off);
  }

  _data(buf) {
    if (this.sio) {
      const c = buf[0];
      if (c === 0x32 && buf.length === 1) return this._frame(1, Buffer.from('3')); // Engine.IO ping -> pong
      if (c === 0x30) return this._frame(1, Buffer.from('40')); // Engine.IO open -> Socket.IO connect to "/"
      if (c === 0x34 && buf[1] === 0x30) return; // Socket.IO connected
      if (c === 0x34 && buf[1] === 0x34) return this._fail(new Error(`socket.io connect_error ${buf}`));
      if (c !== 0x34 || buf[1] !== 0x32) return; // not an event
    }
    const event = this.eventOf(buf);
    if (this.waiters.length) {
      const i = this.waiters.findIndex((w) => w.event === event);
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        clearTimeout(w.t);
        w.resolve(this.decode(buf).data);
      }
    }
    this.onFrame?.(this, event, buf);
  }
  _closed(code) {
    this.closeCode = code;
    this._fail(new Error(`closed ${code}`));
  }
  _fail(err) {
    for (const w of this.waiters.splice(0)) { clearTimeout(w.t); w.reject(err); }
  }
  close() { this.socket.destroy(); }
}

// Open one connection and resolve once session.ready has arrived.
export function connect({ base, framing, token, localAddress, onFrame, timeoutMs = 30_000 }) {
  const f = FRAMINGS[framing];
  const u = new URL(base + f.path);
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, localAddress, agent: false,
      headers: {
        Authorization: `Bearer ${token}`, Connection: 'Upgrade', Upgrade: 'websocket',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13',
      },
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error('handshake timeout')); }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.on('response', (res) => { clearTimeout(timer); res.resume(); reject(new Error(`handshake HTTP ${res.statusCode}`)); });
    req.on('upgrade', (_res, socket, head) => {
      clearTimeout(timer);
      const conn = new Conn(socket, framing, onFrame);
      conn.next('session.ready', timeoutMs).then((data) => { conn.ready = data; resolve(conn); }, (e) => { conn.close(); reject(e); });
      if (head.length) conn._chunk(head);
    });
    req.end();
  });
}

// Message text with the intended send time (µs, monotonic clock shared by all
// processes) embedded, padded to `size` bytes. Receivers find it with one
// Buffer.indexOf, so latency costs no JSON parsing on the hot path.
const MARK = Buffer.from('bench:');
const PAD = 'x'.repeat(4096);
export function benchText(intendedUs, n, size) {
  const s = `bench:${intendedUs}:${n}:`;
  return s + PAD.slice(0, Math.max(0, size - s.length));
}
export function markedTime(buf) {
  const i = buf.indexOf(MARK);
  if (i < 0) return -1;
  let v = 0;
  for (let j = i + MARK.length; j < buf.length; j++) {
    const c = buf[j] - 48;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  return v;
}
