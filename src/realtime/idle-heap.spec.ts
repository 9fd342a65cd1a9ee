import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createServer, connect, type Socket } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import type { AppConfig } from '../config/app-config.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import { addressKey } from '../rate-limit/http-rate-limiter.js';
import { clientAddressOf } from './client-address.js';
import { Connection, type ConnectionPolicy } from './connection.js';
import { ParleyWsAdapter } from './parley-ws.adapter.js';
import type { SessionService } from './session.service.js';

/** What an idle connection keeps was trimmed (bench/run.mjs --only connections); its behaviour must not change. */

describe('Connection.expiresAt', () => {
  const conn = () => new Connection('1', { id: 'u', username: 'u' }, {} as WebSocket, null, {} as ConnectionPolicy);

  it('never expires until set; holds a token exp (whole seconds) exactly', () => {
    const c = conn();
    expect(c.expiresAt).toBe(Infinity);
    c.expiresAt = 1_763_881_234_000;
    expect(c.expiresAt).toBe(1_763_881_234_000);
    c.expiresAt = Infinity;
    expect(c.expiresAt).toBe(Infinity);
  });

  it('rounds a time between seconds down: never later than asked', () => {
    const c = conn();
    c.expiresAt = 1_763_881_234_999;
    expect(c.expiresAt).toBe(1_763_881_234_000);
  });
});

describe('clientAddressOf', () => {
  it("reads the peer's address without leaving Node's cached copy on the socket", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    const socket = await accepted;
    try {
      const addressOf = clientAddressOf(false);
      expect(addressOf({ socket, headers: {} } as IncomingMessage)).toBe(addressKey('127.0.0.1'));
      expect((socket as Socket & { _peername?: unknown })._peername).toBeUndefined();
      expect(socket.remoteAddress).toBe('127.0.0.1'); // still readable
    } finally {
      client.destroy();
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('ParleyWsAdapter, per socket', () => {
  const adapter = () =>
    new ParleyWsAdapter(undefined as never, {} as SessionService, {} as AppConfig, {} as MetricsService);

  it("logs every socket's errors and the server's through one listener", () => {
    const a = adapter();
    const logged: unknown[] = [];
    (a as unknown as { logger: { error(e: unknown): void } }).logger.error = (e: unknown) => logged.push(e);
    const server = new EventEmitter();
    a.bindErrorHandler(server as unknown as WebSocketServer);
    const [s1, s2] = [new EventEmitter(), new EventEmitter()];
    server.emit('connection', s1);
    server.emit('connection', s2);
    expect(s1.listeners('error')).toHaveLength(1);
    expect(s2.listeners('error')[0]).toBe(s1.listeners('error')[0]);
    const errs = [new Error('one'), new Error('two'), new Error('server')];
    s1.emit('error', errs[0]);
    s2.emit('error', errs[1]);
    server.emit('error', errs[2]);
    expect(logged).toEqual(errs);
  });

  it("gives Nest's disconnect callback the socket's close event (code and reason)", () => {
    const socket = new EventEmitter();
    const calls: unknown[][] = [];
    adapter().bindClientDisconnect(socket as unknown as WebSocket, (...args) => calls.push(args));
    socket.emit('close', 1000, 'bye');
    expect(calls).toEqual([[1000, 'bye']]);
  });
});
