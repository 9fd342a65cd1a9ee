import type { WebSocket } from 'ws';
import { Connection } from './connection.js';
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
    write(b: Buffer) {
      if (this.writableCorked > 0) pending.push(b);
      else wire.push([b]);
      return true;
    },
  };
  return { tcp, wire };
}

const limits = { sendBufferCap: 1 << 20, onSlowConsumer: () => undefined };
const open = (tcp: object) => {
  const conn = new Connection('c', { id: 'u', username: 'u' }, { readyState: 1, _socket: tcp } as unknown as WebSocket, null, limits);
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
