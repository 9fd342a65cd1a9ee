import { jest } from '@jest/globals';
import type { WebSocket } from 'ws';
import { CLOSE_GRACE_MAX_MS, CLOSE_GRACE_MS, Connection } from './connection.js';
import { textFrame } from './ws-frame.js';

/** A TCP socket that records what reaches the wire: writes made while corked arrive at the uncork, together. */
function fakeTcp() {
  const wire: Buffer[][] = [];
  let pending: Buffer[] = [];
  const tcp = {
    writableLength: 0,
    writableCorked: 0,
    cork() {
      this.writableCorked++;
    },
    uncork() {
      if (this.writableCorked > 0 && --this.writableCorked === 0 && pending.length) {
        wire.push(pending);
        pending = [];
      }
    },
    end: jest.fn(),
    write(b: Buffer) {
      if (this.writableCorked > 0) pending.push(b);
      else wire.push([b]);
      return true;
    },
  };
  return { tcp, wire };
}

const policy = { sendBufferCap: 1 << 20, onSlowConsumer: () => undefined, onServerClose: () => undefined };
const open = (tcp: object) => {
  const conn = new Connection('c', { id: 'u', username: 'u' }, { readyState: 1, _socket: tcp } as unknown as WebSocket, null, policy);
  conn.open('ready');
  return conn;
};
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('Connection writes', () => {
  it("sends its own frames corked until the end of the turn: a commit's acks and its fan-out leave in one write, in order", async () => {
    const { tcp, wire } = fakeTcp();
    const conn = open(tcp);
    await turn();
    wire.length = 0;
    conn.send('ack-1');
    conn.send('ack-2');
    conn.sendFrame(textFrame('new'));
    expect(wire).toEqual([]); // nothing on the wire yet in this turn
    await turn();
    expect(wire).toEqual([[textFrame('ack-1'), textFrame('ack-2'), textFrame('new')]]);
    expect(tcp.writableCorked).toBe(0);
  });

  it('writes a fan-out frame at once when nothing of its own is pending (no cork, no wait)', () => {
    const { tcp, wire } = fakeTcp();
    const conn = open(tcp);
    return turn().then(() => {
      wire.length = 0;
      conn.sendFrame(textFrame('new'));
      expect(wire).toEqual([[textFrame('new')]]);
    });
  });

  it('uncorks every socket corked in a turn, each once', async () => {
    const sockets = [fakeTcp(), fakeTcp(), fakeTcp()];
    const conns = sockets.map(({ tcp }) => open(tcp));
    await turn();
    for (const s of sockets) s.wire.length = 0;
    conns.forEach((c, i) => c.send(`to-${i}`));
    await turn();
    sockets.forEach((s, i) => expect(s.wire).toEqual([[textFrame(`to-${i}`)]]));
  });
});

describe('Connection close', () => {
  /** A ws socket whose close frame stays queued behind `queued` bytes until the test drains them. */
  function closingSocket(queued: number) {
    const tcp = { ...fakeTcp().tcp, writableLength: queued };
    const socket = {
      readyState: 1,
      _socket: tcp,
      close: jest.fn(function (this: { readyState: number }) {
        this.readyState = 2; // CLOSING: the close frame is queued
      }),
      terminate: jest.fn(function (this: { readyState: number }) {
        this.readyState = 3;
      }),
    };
    const conn = new Connection('c', { id: 'u', username: 'u' }, socket as unknown as WebSocket, null, policy);
    conn.open('ready');
    return { conn, socket, tcp };
  }

  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('cuts a peer that reads nothing of what is queued ahead of the close frame after CLOSE_GRACE_MS', () => {
    const { conn, socket } = closingSocket(500_000);
    conn.close(4008, 'slow consumer');
    jest.advanceTimersByTime(CLOSE_GRACE_MS - 1);
    expect(socket.terminate).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(socket.terminate).toHaveBeenCalledTimes(1);
  });

  it('waits for a peer that keeps reading, so it gets its close code, and cuts it once it stops', () => {
    const { conn, socket, tcp } = closingSocket(500_000);
    conn.close(4008, 'slow consumer');
    for (let period = 0; period < 5; period++) {
      tcp.writableLength -= 50_000; // the peer read some of it in this period
      jest.advanceTimersByTime(CLOSE_GRACE_MS);
    }
    expect(socket.terminate).not.toHaveBeenCalled();
    jest.advanceTimersByTime(CLOSE_GRACE_MS); // no progress in this period
    expect(socket.terminate).toHaveBeenCalledTimes(1);
  });

  it('cuts a peer that reads, but too slowly to finish within CLOSE_GRACE_MAX_MS', () => {
    const { conn, socket, tcp } = closingSocket(1_000_000_000);
    conn.close(4008, 'slow consumer');
    let elapsed = 0;
    while (socket.terminate.mock.calls.length === 0 && elapsed < 2 * CLOSE_GRACE_MAX_MS) {
      tcp.writableLength -= 1;
      jest.advanceTimersByTime(CLOSE_GRACE_MS);
      elapsed += CLOSE_GRACE_MS;
    }
    expect(elapsed).toBeGreaterThanOrEqual(CLOSE_GRACE_MAX_MS);
    expect(elapsed).toBeLessThanOrEqual(CLOSE_GRACE_MAX_MS + CLOSE_GRACE_MS);
  });

  it('only ends its side once the close frame is in the kernel, so a late reader still gets it', () => {
    const { conn, socket, tcp } = closingSocket(0);
    conn.close(1008, 'session ended');
    jest.advanceTimersByTime(CLOSE_GRACE_MS);
    expect(tcp.end).toHaveBeenCalledTimes(1);
    expect(socket.terminate).not.toHaveBeenCalled(); // ws's close timer destroys it at CLOSE_GRACE_MAX_MS
  });

  it('ends its side when a reading peer has taken everything queued ahead of the close frame', () => {
    const { conn, socket, tcp } = closingSocket(100_000);
    conn.close(4008, 'slow consumer');
    tcp.writableLength = 40_000;
    jest.advanceTimersByTime(CLOSE_GRACE_MS);
    tcp.writableLength = 0;
    jest.advanceTimersByTime(CLOSE_GRACE_MS);
    expect(tcp.end).toHaveBeenCalledTimes(1);
    expect(socket.terminate).not.toHaveBeenCalled();
  });

  it('leaves a socket alone once the close handshake has finished', () => {
    const { conn, socket } = closingSocket(0);
    conn.close(1008, 'session ended');
    socket.readyState = 3;
    jest.advanceTimersByTime(CLOSE_GRACE_MAX_MS);
    expect(socket.terminate).not.toHaveBeenCalled();
  });
});
