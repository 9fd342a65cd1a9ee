import { Injectable } from '@nestjs/common';
import { ConnectionRegistry } from './connection-registry.js';
import { textFrame } from './ws-frame.js';

/**
 * Where frames for users go. The publisher builds each frame (personalized where it must be)
 * and names its recipients; the bus gets it to their connections. The in-process bus delivers
 * to this instance's connections; a Redis bus would publish the same (users, frames) and let
 * every instance deliver to its own, without the gateway or the services changing.
 */
export abstract class FanoutBus {
  /**
   * Sends the frames, in order, to every connection of each user, except one connection when
   * given; `personal(userId)`, when given, adds one frame of that user's own after them.
   * Returns the number of connections they were handed to on this instance.
   */
  abstract toUsers(userIds: Iterable<string>, frames: string | string[], opts?: DeliveryOptions): number;
}

export interface DeliveryOptions {
  exceptConnectionId?: string;
  personal?: (userId: string) => string;
}

@Injectable()
export class LocalFanoutBus extends FanoutBus {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  toUsers(userIds: Iterable<string>, frames: string | string[], opts: DeliveryOptions = {}): number {
    // Framed once, lazily: every socket gets the same bytes (all the frames in one Buffer, so
    // one write each), none if nobody is connected here.
    let shared: Buffer | null = null;
    let sent = 0;
    for (const userId of userIds) {
      const conns = this.registry.of(userId);
      if (!conns) continue;
      shared ??= typeof frames === 'string' ? textFrame(frames) : Buffer.concat(frames.map((f) => textFrame(f)));
      const own = opts.personal ? textFrame(opts.personal(userId)) : undefined;
      for (const conn of conns) {
        if (conn.id === opts.exceptConnectionId) continue;
        if (own) conn.cork();
        conn.sendFrame(shared);
        if (own) {
          conn.sendFrame(own);
          conn.uncork();
        }
        sent++;
      }
    }
    return sent;
  }
}
