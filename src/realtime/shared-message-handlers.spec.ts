import { Module, UsePipes, ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, type MessageMappingProperties } from '@nestjs/websockets';
import { WebSocketsController } from '@nestjs/websockets/web-sockets-controller.js';
import { IsString } from 'class-validator';
import type { AddressInfo } from 'node:net';
import { firstValueFrom, lastValueFrom, of, Subject, toArray, type Observable } from 'rxjs';
import { WebSocket } from 'ws';
import {
  installSharedMessageHandlers,
  isSharedMessageHandlersInstalled,
  type SharedHandlers,
} from './shared-message-handlers.js';

/**
 * shared-message-handlers.ts replaces a method of Nest's WebSocketsController. These tests hold
 * Nest's own code to what that replacement copies, so an upgrade of @nestjs/websockets that
 * changes it fails here, not silently in production's dispatch.
 */

type Internals = {
  subscribeMessages(map: MessageMappingProperties[], client: unknown, instance: object): void;
  getConnectionHandler(ctx: unknown, instance: object, map: MessageMappingProperties[], disconnect: Subject<unknown>, connection: Subject<unknown>): (...args: unknown[]) => void;
  pickResult(deferred: Promise<unknown>): Promise<Observable<unknown>>;
};
const proto = WebSocketsController.prototype as unknown as Internals;

/** One handler entry as Nest's explorer makes it; the callback records how it is called. */
function entry(message: string, calls: unknown[][]): MessageMappingProperties {
  return {
    message,
    methodName: message,
    isAckHandledManually: false,
    callback: function (this: unknown, ...args: unknown[]) {
      calls.push([this, ...args]);
      return Promise.resolve(`${message}:done`);
    },
  };
}

describe("Nest's WebSocketsController, as shared-message-handlers.ts relies on it", () => {
  it('is not patched before installSharedMessageHandlers is called', () => {
    expect(isSharedMessageHandlersInstalled()).toBe(false);
  });

  it("calls subscribeMessages(map, client, instance) for each connection, and the adapter's bindClientDisconnect", () => {
    const subscribed: unknown[][] = [];
    const disconnects: unknown[][] = [];
    const adapter = { bindClientDisconnect: (client: unknown, cb: (reason: unknown) => void) => disconnects.push([client, cb]) };
    const controller = { config: { getIoAdapter: () => adapter } };
    const context = { subscribeMessages: (...args: unknown[]) => subscribed.push(args) };
    const map = [entry('a', [])];
    const instance = {};
    const disconnect = new Subject<unknown>();
    const seen: unknown[] = [];
    disconnect.subscribe((d) => seen.push(d));
    const handler = proto.getConnectionHandler.call(controller, context, instance, map, disconnect, new Subject());
    const client = {};
    handler(client, {});
    expect(subscribed).toEqual([[map, client, instance]]);
    expect(subscribed[0][0]).toBe(map); // the same array for every connection: the key of the shared table
    expect(disconnects).toHaveLength(1);
    (disconnects[0][1] as (r: unknown) => void)(1000);
    expect(seen).toEqual([{ client, reason: 1000 }]);
  });

  it('binds each callback to (instance, client), called with (data, event), and transforms results with pickResult', async () => {
    const calls: unknown[][] = [];
    const bound: [unknown, MessageMappingProperties[], (r: unknown) => Observable<unknown>][] = [];
    const adapter = { bindMessageHandlers: (...args: (typeof bound)[number]) => bound.push(args) };
    const controller = { config: { getIoAdapter: () => adapter }, pickResult: proto.pickResult };
    const instance = { name: 'gateway' };
    const client = { name: 'client' };
    proto.subscribeMessages.call(controller, [entry('a', calls), entry('b', calls)], client, instance);

    expect(bound).toHaveLength(1);
    const [boundClient, handlers, transform] = bound[0];
    expect(boundClient).toBe(client);
    expect(handlers.map((h) => [h.message, h.isAckHandledManually])).toEqual([['a', false], ['b', false]]);
    await expect(handlers[1].callback({ x: 1 }, 'b')).resolves.toBe('b:done');
    expect(calls).toEqual([[instance, client, { x: 1 }, 'b']]);
    // What the shared table's transform copies.
    expect(await lastValueFrom(transform(Promise.resolve(of(1, 2))).pipe(toArray()))).toEqual([1, 2]);
    expect(await firstValueFrom(transform(Promise.resolve(3)))).toBe(3);
  });
});

describe('installSharedMessageHandlers', () => {
  beforeAll(() => installSharedMessageHandlers());

  it('gives an adapter that opts in one table per gateway, calling the same callbacks', async () => {
    installSharedMessageHandlers(); // idempotent
    expect(isSharedMessageHandlersInstalled()).toBe(true);
    const calls: unknown[][] = [];
    const tables: [unknown, SharedHandlers][] = [];
    const adapter = { bindSharedMessageHandlers: (client: unknown, shared: SharedHandlers) => tables.push([client, shared]) };
    const controller = { config: { getIoAdapter: () => adapter }, pickResult: proto.pickResult };
    const instance = {};
    const map = [entry('a', calls), entry('b', calls)];
    const [c1, c2] = [{}, {}];
    proto.subscribeMessages.call(controller, map, c1, instance);
    proto.subscribeMessages.call(controller, map, c2, instance);

    expect(tables.map(([c]) => c)).toEqual([c1, c2]);
    const shared = tables[0][1];
    expect(tables[1][1]).toBe(shared);
    expect(shared.handlers.map((h) => h.message)).toEqual(['a', 'b']);
    await expect(Promise.resolve(shared.handlers[0].invoke(c2, { y: 2 }, 'a'))).resolves.toBe('a:done');
    expect(calls).toEqual([[instance, c2, { y: 2 }, 'a']]);
    expect(await lastValueFrom(shared.transform(Promise.resolve(of(4, 5))).pipe(toArray()))).toEqual([4, 5]);
    expect(await firstValueFrom(shared.transform(6))).toBe(6);
  });

  it("leaves other adapters Nest's own table per socket", () => {
    const bound: unknown[][] = [];
    const adapter = { bindMessageHandlers: (...args: unknown[]) => bound.push(args) };
    const controller = { config: { getIoAdapter: () => adapter }, pickResult: proto.pickResult };
    const client = {};
    proto.subscribeMessages.call(controller, [entry('a', [])], client, {});
    expect(bound).toHaveLength(1);
    expect(bound[0][0]).toBe(client);
  });
});

class EchoDto {
  @IsString() text!: string;
}

@WebSocketGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  @UsePipes(new ValidationPipe({ whitelist: true }))
  echo(@ConnectedSocket() socket: WebSocket, @MessageBody() body: EchoDto) {
    // The socket itself (@ConnectedSocket), and the body as the pipe left it (whitelist: no `extra`).
    return { isSocket: socket.readyState === WebSocket.OPEN && typeof socket.send === 'function', body };
  }

  @SubscribeMessage('stream')
  stream() {
    return of('one', 'two');
  }
}

@Module({ providers: [EchoGateway] })
class EchoModule {}

/** Dispatches the way ParleyWsAdapter does, from the shared table, and records the tables. */
class SharingAdapter extends WsAdapter {
  readonly tables: SharedHandlers[] = [];
  bindSharedMessageHandlers(client: WebSocket, shared: SharedHandlers): void {
    this.tables.push(shared);
    client.on('message', (raw) => {
      const { event, data } = JSON.parse(raw.toString()) as { event: string; data: unknown };
      const handler = shared.handlers.find((h) => h.message === event)!;
      shared.transform(handler.invoke(client, data, event)).subscribe((reply) => client.send(JSON.stringify(reply)));
    });
  }
}

describe('installSharedMessageHandlers, in a Nest application', () => {
  let app: INestApplication;
  let adapter: SharingAdapter;
  let url: string;

  beforeAll(async () => {
    installSharedMessageHandlers();
    app = await NestFactory.create(EchoModule, { logger: false });
    adapter = new SharingAdapter(app);
    app.useWebSocketAdapter(adapter);
    await app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/ws`;
  });
  afterAll(() => app.close());

  const open = (): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const replies = (ws: WebSocket, n: number): Promise<unknown[]> =>
    new Promise((resolve) => {
      const got: unknown[] = [];
      ws.on('message', (raw) => got.push(JSON.parse(raw.toString())) === n && resolve(got));
    });

  it("routes every socket through one table, Nest's pipes, @ConnectedSocket and Observable results included", async () => {
    const [a, b] = [await open(), await open()];
    try {
      const echoed = replies(a, 1);
      a.send(JSON.stringify({ event: 'echo', data: { text: 'hi', extra: 1 } }));
      expect(await echoed).toEqual([{ isSocket: true, body: { text: 'hi' } }]);
      a.removeAllListeners('message');
      const streamed = replies(a, 2);
      a.send(JSON.stringify({ event: 'stream', data: {} }));
      expect(await streamed).toEqual(['one', 'two']);
      const fromB = replies(b, 1);
      b.send(JSON.stringify({ event: 'echo', data: { text: 'b' } }));
      expect(await fromB).toEqual([{ isSocket: true, body: { text: 'b' } }]);
      expect(adapter.tables).toHaveLength(2);
      expect(adapter.tables[1]).toBe(adapter.tables[0]);
    } finally {
      a.close();
      b.close();
    }
  });
});
