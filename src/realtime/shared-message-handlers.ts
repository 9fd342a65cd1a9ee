import type { MessageMappingProperties } from '@nestjs/websockets';
import { WebSocketsController } from '@nestjs/websockets/web-sockets-controller.js';
import { from, mergeAll, type Observable } from 'rxjs';

/**
 * One table of a gateway's message handlers for all of its sockets.
 *
 * Why this patches Nest: for every connection, `WebSocketsController.subscribeMessages`
 * (@nestjs/websockets 12.1) builds a new table of the gateway's handlers, each one
 * `callback.bind(instance, client)` in a new object, plus a new `transform` closure, and hands
 * them to the adapter, which must keep them for the socket's life: ~1.6 kB of heap per idle
 * connection with a dozen @SubscribeMessage handlers, the largest cost of an idle socket. No
 * public hook changes that, so this replaces that one method, for adapters that opt in (they
 * implement `bindSharedMessageHandlers`), with a table built once per gateway whose entries take
 * the client as an argument. Every other adapter gets Nest's own method, unchanged.
 *
 * The handler callbacks are Nest's own (guards, pipes, interceptors and filters included): only
 * who binds the client changes. shared-message-handlers.spec.ts holds the original method to
 * what this relies on, so an upgrade of Nest that changes it fails there, loudly.
 */

/** A gateway's handler, the client as its first argument (as Nest's callback receives it). */
export interface SharedHandler {
  readonly message: string;
  readonly isAckHandledManually: boolean;
  invoke(client: unknown, data: unknown, event: string): unknown;
}

/** A gateway's handlers and Nest's result transform (handler result -> Observable), shared. */
export interface SharedHandlers {
  readonly handlers: readonly SharedHandler[];
  readonly transform: (result: unknown) => Observable<unknown>;
}

/** An adapter that takes a gateway's shared table instead of a table per socket. */
export interface SharedHandlersAdapter {
  bindSharedMessageHandlers(client: unknown, shared: SharedHandlers): void;
}

/** The parts of WebSocketsController this module reads (checked by the spec). */
interface ControllerInternals {
  config: { getIoAdapter(): unknown };
  pickResult(deferred: Promise<unknown>): Promise<Observable<unknown>>;
  subscribeMessages(subscribersMap: MessageMappingProperties[], client: unknown, instance: object): void;
}

const PATCHED = Symbol.for('parley.sharedMessageHandlers');

/** One shared table per gateway: Nest keeps one `subscribersMap` array per gateway. */
const tables = new WeakMap<MessageMappingProperties[], SharedHandlers>();

const optsIn = (adapter: unknown): adapter is SharedHandlersAdapter =>
  typeof (adapter as Partial<SharedHandlersAdapter> | null)?.bindSharedMessageHandlers === 'function';

/** What Nest's subscribeMessages builds per socket, built once, with the client an argument. */
export function sharedHandlersOf(controller: Pick<ControllerInternals, 'pickResult'>, subscribersMap: MessageMappingProperties[], instance: object): SharedHandlers {
  let shared = tables.get(subscribersMap);
  if (!shared) {
    shared = {
      handlers: subscribersMap.map(({ message, callback, isAckHandledManually }) => ({
        message: message as string,
        isAckHandledManually,
        // Nest calls `callback.bind(instance, client)(data, event)`: the same call, unbound.
        invoke: (client: unknown, data: unknown, event: string) => callback.call(instance, client, data, event),
      })),
      // Nest's own transform (web-sockets-controller.js), one per gateway instead of per socket.
      transform: (result: unknown) => from(controller.pickResult(result as Promise<unknown>)).pipe(mergeAll()),
    };
    tables.set(subscribersMap, shared);
  }
  return shared;
}

/**
 * Replaces WebSocketsController.prototype.subscribeMessages (once per process; idempotent).
 * Throws if the method is not there: an upgrade that moved it must not pass unnoticed.
 */
export function installSharedMessageHandlers(): void {
  const proto = WebSocketsController.prototype as unknown as ControllerInternals & { [PATCHED]?: true };
  if (proto[PATCHED]) return;
  const original = proto.subscribeMessages;
  if (typeof original !== 'function' || typeof proto.pickResult !== 'function') {
    throw new Error('@nestjs/websockets: WebSocketsController.subscribeMessages/pickResult not found; see shared-message-handlers.ts');
  }
  proto.subscribeMessages = function (this: ControllerInternals, subscribersMap, client, instance) {
    const adapter = this.config.getIoAdapter();
    if (!optsIn(adapter)) return original.call(this, subscribersMap, client, instance);
    adapter.bindSharedMessageHandlers(client, sharedHandlersOf(this, subscribersMap, instance));
  };
  proto[PATCHED] = true;
}

/** Whether installSharedMessageHandlers has replaced Nest's method in this process. */
export function isSharedMessageHandlersInstalled(): boolean {
  return (WebSocketsController.prototype as unknown as { [PATCHED]?: true })[PATCHED] === true;
}
