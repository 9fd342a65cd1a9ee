import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { isObservable, lastValueFrom, type Observable } from 'rxjs';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { jsonTooDeep, TOO_DEEP_MESSAGE } from '../common/json-depth.js';
import type { AppConfig } from '../config/app-config.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import { fastTransform } from '../common/validation.js';
import { ChatGateway, HOT_EVENTS } from './chat.gateway.js';
import { CLOSE, Connection } from './connection.js';
import { type FastRoute, fastRoutes } from './fast-routes.js';
import { frame } from './server-events.js';
import { connectionOf, SessionService } from './session.service.js';
import {
  installSharedMessageHandlers,
  type SharedHandler,
  type SharedHandlers,
  type SharedHandlersAdapter,
} from './shared-message-handlers.js';
import { WsErrorFilter } from './ws-exception.filter.js';

/** Rate-limited frames in a row after which a connection is closed as abusive (1008). */
const MAX_STRIKES = 100;

/**
 * The `ws` adapter with Parley's rules:
 *  - the handshake is authenticated in `verifyClient`, before the upgrade completes;
 *  - every frame is checked against the token's expiry and the session's end (1008);
 *  - frames are limited in size (1009), never compressed, and rate-limited per connection;
 *  - a frame that is not JSON, not `{event, data}`, nests deeper than MAX_JSON_DEPTH, or names no
 *    known event gets an `error` frame (`bad_json`, `invalid_payload`, `unknown_event`) instead of
 *    being dropped in silence.
 * Handlers' replies and errors go through the Connection, so `session.ready` stays first.
 */
export class ParleyWsAdapter extends WsAdapter implements SharedHandlersAdapter {
  private readonly log = new Logger('ParleyWsAdapter');

  /** The hot events' handlers, called without Nest's per-frame pipeline (see fast-routes.ts). */
  private routes?: Map<string, FastRoute>;
  /** The gateway's error mapping, for the errors of the fast routes. */
  private readonly errorFilter: WsErrorFilter;
  /** Each gateway's shared table with this adapter, the one object every socket points to. */
  private readonly bound = new WeakMap<SharedHandlers, Bound>();

  constructor(
    private readonly nest: INestApplicationContext,
    private readonly session: SessionService,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    super(nest);
    this.errorFilter = new WsErrorFilter(metrics);
    // Nest then hands this adapter one handler table per gateway, not one per socket.
    installSharedMessageHandlers();
  }

  override create(port: number, options: Record<string, unknown> & { path?: string } = {}) {
    return super.create(port, {
      ...options,
      maxPayload: this.config.maxFrameBytes,
      perMessageDeflate: false,
      verifyClient: (info: Parameters<SessionService['verifyHandshake']>[0], done: Parameters<SessionService['verifyHandshake']>[1]) =>
        this.session.verifyHandshake(info, done),
    });
  }

  /**
   * How Nest binds a gateway's handlers to a socket (see shared-message-handlers.ts): the table,
   * shared by every socket of the gateway, is kept on the socket and read by one shared listener:
   * no table, Map or closure per connection.
   */
  bindSharedMessageHandlers(client: WebSocket, shared: SharedHandlers): void {
    this.routes ??= fastRoutes(this.nest.get(ChatGateway, { strict: false }), HOT_EVENTS);
    let bound = this.bound.get(shared);
    if (!bound) this.bound.set(shared, (bound = { ...shared, adapter: this }));
    (client as Dispatchable)[HANDLERS] = bound;
    client.on('message', onMessage);
  }

  /**
   * Nest's own way, if its controller ever calls this directly (an upgrade that bypasses the
   * shared table): the same dispatch over this socket's table, at its cost per connection.
   */
  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    this.routes ??= fastRoutes(this.nest.get(ChatGateway, { strict: false }), HOT_EVENTS);
    const own = handlers.map(({ message, callback, isAckHandledManually }): SharedHandler => ({
      message: message as string,
      isAckHandledManually,
      invoke: (_client, data, event) => callback(data, event),
    }));
    (client as Dispatchable)[HANDLERS] = { handlers: own, transform, adapter: this };
    client.on('message', onMessage);
  }

  /**
   * As WsAdapter's, with one logging listener per server instead of a closure per socket.
   */
  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    const logError = (err: Error) => this.logger.error(err);
    server.on('connection', (ws: WebSocket) => ws.on('error', logError));
    server.on('error', logError);
    return server;
  }

  /**
   * `on`, not WsAdapter's `once`: ws emits 'close' once per socket (and Nest drops a repeat for
   * the same client), and `once` wraps the callback in another closure per connection.
   */
  override bindClientDisconnect(client: WebSocket, callback: (...args: unknown[]) => void): void {
    client.on('close', callback);
  }

  /** @internal called by onMessage for each frame of a socket. */
  handleFrame(client: WebSocket, raw: RawData, isBinary: boolean): void {
    const conn = connectionOf(client);
    const bound = (client as Dispatchable)[HANDLERS];
    if (!conn || conn.closed || !bound) return;
    if (!this.session.admit(conn)) return; // token expired, or session ended: closed (1008)
    try {
      this.dispatch(client, conn, raw, isBinary, bound.handlers, bound.transform);
    } catch (err) {
      // Never let one frame's failure silence the connection's later frames.
      this.log.error(`frame dispatch failed: ${(err as Error).stack}`);
      this.sendError(conn, 'internal', 'internal error');
    }
  }

  private dispatch(
    client: WebSocket,
    conn: Connection,
    raw: RawData,
    isBinary: boolean,
    handlers: readonly SharedHandler[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (conn.bucket) {
      const retryAfterMs = conn.bucket.take();
      if (retryAfterMs > 0) {
        this.metrics.errors.inc({ code: 'rate_limited', transport: 'ws' });
        if (++conn.strikes > MAX_STRIKES) {
          this.metrics.closes.inc({ reason: 'abuse' });
          conn.close(CLOSE.POLICY, 'rate limit abuse');
          return;
        }
        return this.sendError(conn, 'rate_limited', `too many frames; retry in ${retryAfterMs} ms`, peekRef(raw), { retryAfterMs });
      }
      conn.strikes = 0;
    }
    if (isBinary) return this.sendError(conn, 'bad_json', 'frames must be JSON text frames');
    // Before JSON.parse and the validation pipe, which recurse once per level (docs/security.md).
    if (jsonTooDeep(Buffer.isBuffer(raw) ? raw : Buffer.from(raw.toString()))) {
      return this.sendError(conn, 'bad_json', TOO_DEEP_MESSAGE, peekRef(raw));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString());
    } catch {
      return this.sendError(conn, 'bad_json', 'frame is not valid JSON');
    }
    if (!isRecord(parsed) || typeof parsed.event !== 'string') {
      return this.sendError(conn, 'bad_json', 'a frame is {"event": "<name>", "data": {...}}');
    }
    const data = parsed.data === undefined ? {} : parsed.data;
    const ref = isRecord(data) && typeof data.ref === 'string' ? data.ref : undefined;
    const handler = handlers.find((h) => h.message === parsed.event);
    if (!handler) return this.sendError(conn, 'unknown_event', `unknown event "${parsed.event.slice(0, 64)}"`, ref);
    if (!isRecord(data)) return this.sendError(conn, 'invalid_payload', '`data` must be an object', ref);

    const started = parsed.event === 'message.send' ? performance.now() : 0;
    const answer = (reply: unknown) => {
      if (reply === undefined || reply === null) return;
      // The one serialization of the answer: a Reply object is serialized here; a handler that
      // serialized its answer itself (the ack, from the message's cached JSON) returns the string.
      conn.send(typeof reply === 'string' ? reply : JSON.stringify(reply));
      if (started) this.metrics.sendLatency.observe((performance.now() - started) / 1000);
    };
    const failed = (err: unknown) => this.log.error(`handler failed: ${(err as Error)?.stack ?? String(err)}`);

    // A hot event whose payload the compiled validator accepts: its handler, directly. What the
    // pipe would return is the same DTO (a property test holds them together), and errors take
    // the filter's own mapping; anything else goes through Nest below, which words the refusal.
    const route = this.routes?.get(parsed.event);
    const dto = route && fastTransform(route.dto, data);
    if (dto) {
      const fail = (err: unknown) => this.errorFilter.report(conn, data, err);
      let result: unknown;
      try {
        result = route.call(client, dto);
      } catch (err) {
        return fail(err);
      }
      if (result instanceof Promise) result.then(answer, fail).catch(failed);
      else answer(result);
      return;
    }

    const result: unknown = handler.invoke(client, data, parsed.event);
    // Our handlers return promises or values: answer them directly. Nest's `transform` wraps
    // every result in an rxjs pipeline, a cost per frame kept for handlers returning Observables.
    if (isObservable(result)) transform(result).subscribe({ next: answer, error: failed });
    else Promise.resolve(result).then(async (r) => answer(isObservable(r) ? await lastValueFrom(r, { defaultValue: undefined }) : r), failed);
  }

  private sendError(
    conn: Connection,
    code: 'bad_json' | 'unknown_event' | 'invalid_payload' | 'rate_limited' | 'internal',
    message: string,
    ref?: string,
    extra: { retryAfterMs?: number } = {},
  ): void {
    if (code !== 'rate_limited') this.metrics.errors.inc({ code, transport: 'ws' });
    conn.send(frame('error', { code, message, ...(ref ? { ref } : {}), ...extra }));
  }
}

const HANDLERS = Symbol('parley.handlers');
/** A gateway's handlers and the adapter that dispatches to them: one object per gateway. */
type Bound = SharedHandlers & { adapter: ParleyWsAdapter };
type Dispatchable = WebSocket & { [HANDLERS]?: Bound };

/** The `message` listener of every socket (`this` is the socket). */
function onMessage(this: WebSocket, raw: RawData, isBinary: boolean): void {
  (this as Dispatchable)[HANDLERS]?.adapter.handleFrame(this, raw, isBinary);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A rate-limited frame is not parsed in full; its ref is echoed when cheaply found. */
function peekRef(raw: RawData): string | undefined {
  const m = /"ref"\s*:\s*"([^"\\]{1,64})"/.exec(raw.toString());
  return m?.[1];
}
