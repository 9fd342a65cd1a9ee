import { EXCEPTION_FILTERS_METADATA, GUARDS_METADATA, INTERCEPTORS_METADATA, PIPES_METADATA } from '@nestjs/common/constants.js';
import { MESSAGE_METADATA, PARAM_ARGS_METADATA } from '@nestjs/websockets/constants.js';
import { WsParamtype } from '@nestjs/websockets/enums/ws-paramtype.enum.js';
import type { WebSocket } from 'ws';
import { compileProblem } from '../common/fast-validator.js';

/** A hot event, answered by the adapter without Nest's per-frame pipeline. */
export interface FastRoute {
  /** The DTO of the handler's @MessageBody: its compiled validator checks the payload. */
  dto: new () => object;
  /** The gateway's own handler, called with the socket and the validated DTO. */
  call: (socket: WebSocket, dto: object) => unknown;
}

/**
 * The fast routes of a gateway's `events`, read from its own decorators (@SubscribeMessage,
 * @ConnectedSocket, @MessageBody and the parameter's type), so the gateway stays the one place
 * that says which event calls what. The adapter reproduces what Nest does around such a handler
 * (the class's validation pipe, through the DTO's compiled validator, and its WsErrorFilter) and
 * nothing else, so a handler that asks for more (a guard, an interceptor, a pipe or filter of its
 * own, another parameter) is refused here, at startup, rather than run without it.
 */
export function fastRoutes(gateway: object, events: readonly string[]): Map<string, FastRoute> {
  const proto = Object.getPrototypeOf(gateway) as Record<string, unknown>;
  const cls = gateway.constructor;
  const routes = new Map<string, FastRoute>();
  for (const key of Object.getOwnPropertyNames(proto)) {
    const method = proto[key];
    if (key === 'constructor' || typeof method !== 'function') continue;
    const event = Reflect.getMetadata(MESSAGE_METADATA, method) as string | undefined;
    if (event === undefined || !events.includes(event)) continue;
    const refuse = (why: string) => new Error(`fast route ${event} (${cls.name}.${key}): ${why}`);
    for (const meta of [GUARDS_METADATA, INTERCEPTORS_METADATA]) {
      if ((Reflect.getMetadata(meta, cls) as unknown[] | undefined)?.length || (Reflect.getMetadata(meta, method) as unknown[] | undefined)?.length) {
        throw refuse(`has ${meta}`);
      }
    }
    for (const meta of [PIPES_METADATA, EXCEPTION_FILTERS_METADATA]) {
      if ((Reflect.getMetadata(meta, method) as unknown[] | undefined)?.length) throw refuse(`has its own ${meta}`);
    }
    const params = (Reflect.getMetadata(PARAM_ARGS_METADATA, cls, key) ?? {}) as Record<string, { index: number; data?: unknown; pipes?: unknown[] }>;
    let socketAt = -1;
    let bodyAt = -1;
    for (const [k, p] of Object.entries(params)) {
      const type = Number(k.split(':')[0]);
      if (p.data !== undefined || p.pipes?.length) throw refuse('a parameter with data or pipes of its own');
      if (type === WsParamtype.SOCKET) socketAt = p.index;
      else if (type === WsParamtype.PAYLOAD) bodyAt = p.index;
      else throw refuse(`parameter type ${type}`);
    }
    const arity = (method as (...args: unknown[]) => unknown).length;
    if (bodyAt < 0 || Object.keys(params).length !== arity) throw refuse('needs exactly @MessageBody() and optionally @ConnectedSocket()');
    const dto = (Reflect.getMetadata('design:paramtypes', proto, key) as (new () => object)[])[bodyAt];
    const problem = compileProblem(dto);
    if (problem) throw refuse(`${dto.name} does not compile: ${problem}`);
    const fn = method as (...args: unknown[]) => unknown;
    const call: FastRoute['call'] =
      socketAt < 0 ? (_socket, body) => fn.call(gateway, body)
      : socketAt === 0 && bodyAt === 1 ? (socket, body) => fn.call(gateway, socket, body)
      : (socket, body) => {
          const args: unknown[] = [];
          args[socketAt] = socket;
          args[bodyAt] = body;
          return fn.apply(gateway, args);
        };
    routes.set(event, { dto, call });
  }
  const missing = events.filter((e) => !routes.has(e));
  if (missing.length) throw new Error(`fast routes: no handler for ${missing.join(', ')} in ${cls.name}`);
  return routes;
}
