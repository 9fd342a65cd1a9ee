import { Injectable } from '@nestjs/common';
import type { PresenceStatus } from '../channels/conversation.mapper.js';

/**
 * Who is online: a user is online while at least one of their connections is open, on this
 * instance. The realtime layer reports connections; everyone else only asks `statusOf`.
 */
@Injectable()
export class PresenceService {
  private readonly connections = new Map<string, number>();

  statusOf = (userId: string): PresenceStatus => ((this.connections.get(userId) ?? 0) > 0 ? 'online' : 'offline');

  /** Returns true when this is the user's first connection (offline → online). */
  connected(userId: string): boolean {
    const n = (this.connections.get(userId) ?? 0) + 1;
    this.connections.set(userId, n);
    return n === 1;
  }

  /** Returns true when this was the user's last connection (online → offline). */
  disconnected(userId: string): boolean {
    const n = (this.connections.get(userId) ?? 0) - 1;
    if (n <= 0) {
      this.connections.delete(userId);
      return true;
    }
    this.connections.set(userId, n);
    return false;
  }
}
