// The one client used against every server. Parley and the ws reference speak
// {"event","data"} JSON frames on /ws; the Socket.IO reference gets the same
// events in Engine.IO/Socket.IO framing (42["event",data]), spoken here over a
// plain `ws` socket so that all three servers are driven by identical, lean
// client code (socket.io-client would add its own per-packet cost on the client
// side, which shares the machine's two cores with the server).
import WebSocket from 'ws';

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
  constructor(ws, framing, onFrame) {
    this.ws = ws;
    this.f = FRAMINGS[framing];
    this.sio = framing === 'sio';
    this.onFrame = onFrame;
    this.waiters = [];
    this.closeCode = null;
  }
  send(event, data) { this.ws.send(this.f.encode(event, data)); }
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

  _data(buf) {
    if (this.sio) {
      const c = buf[0];
      if (c === 0x32 && buf.length === 1) return this.ws.send('3'); // Engine.IO ping -> pong
      if (c === 0x30) return this.ws.send('40'); // Engine.IO open -> Socket.IO connect to "/"
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
  _fail(err) {
    for (const w of this.waiters.splice(0)) { clearTimeout(w.t); w.reject(err); }
  }
  close() { try { this.ws.terminate(); } catch { /* gone */ } }
}

// Open one connection and resolve once session.ready has arrived.
export function connect({ base, framing, token, localAddress, onFrame, timeoutMs = 30_000 }) {
  const f = FRAMINGS[framing];
  const ws = new WebSocket(base + f.path, {
    headers: { Authorization: `Bearer ${token}` },
    perMessageDeflate: false,
    skipUTF8Validation: true, // trusted local server; keeps the client lean
    handshakeTimeout: timeoutMs,
    localAddress,
  });
  const conn = new Conn(ws, framing, onFrame);
  const ready = conn.next('session.ready', timeoutMs);
  ws.on('message', (buf) => conn._data(buf));
  ws.on('close', (code) => { conn.closeCode = code; conn._fail(new Error(`closed ${code}`)); });
  ws.on('error', (e) => conn._fail(e));
  ws.on('unexpected-response', (_req, res) => conn._fail(new Error(`handshake HTTP ${res.statusCode}`)));
  return ready.then((data) => { conn.ready = data; return conn; }, (e) => { conn.close(); throw e; });
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
