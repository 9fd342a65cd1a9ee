import { Injectable } from '@nestjs/common';
import { ConnectionRegistry } from './connection-registry.js';

/**
 * Where frames for users go. The publisher builds each frame (personalized where it must be)
 * and names its recipients; the bus gets it to their connections. The in-process bus delivers
 * to this instance's connections; a Redis bus would publish the same (users, frame) pairs and let
 * every instance deliver to its own, without the gateway or the services changing.
 */
export abstract class FanoutBus {
  /**
   * Sends one frame to every connection of each user, except one connection when given.
   * Returns the number of connections it was handed to on this instance.
   */
  abstract toUsers(userIds: Iterable<string>, frame: string, exceptConnectionId?: string): number;
}

@Injectable()
export class LocalFanoutBus extends FanoutBus {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  toUsers(userIds: Iterable<string>, frame: string, exceptConnectionId?: string): number {
    // Encoded once: every socket gets the same Buffer rather than converting the string again.
    let data: string | Buffer = frame;
    let sent = 0;
    for (const userId of userIds) {
      const conns = this.registry.of(userId);
      if (!conns) continue;
      for (const conn of conns) {
        if (conn.id === exceptConnectionId) continue;
        if (typeof data === 'string') data = Buffer.from(data);
        conn.send(data);
        sent++;
      }
    }
    return sent;
  }
}
