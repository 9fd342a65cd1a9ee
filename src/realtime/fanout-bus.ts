import { Injectable } from '@nestjs/common';
import type { Connection } from './connection.js';
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

  /** Runs `publish`, letting the bus coalesce what it sends meanwhile (one write per socket). */
  batch(publish: () => void): void {
    publish();
  }
}

@Injectable()
export class LocalFanoutBus extends FanoutBus {
  /** Connections corked by the batch in progress, if any. */
  private corked: Set<Connection> | null = null;

  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  /**
   * While a batch runs, each socket it writes to is corked, and uncorked at the end: a client
   * that gets five message.new and a conversation.update from one commit gets them in one
   * write system call instead of six.
   */
  override batch(publish: () => void): void {
    if (this.corked) return publish();
    const corked = (this.corked = new Set());
    try {
      publish();
    } finally {
      this.corked = null;
      for (const conn of corked) conn.uncork();
    }
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
        if (this.corked && !this.corked.has(conn)) {
          conn.cork();
          this.corked.add(conn);
        }
        conn.send(data);
        sent++;
      }
    }
    return sent;
  }
}
