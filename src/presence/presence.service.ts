import { Injectable } from '@nestjs/common';
import type { PresenceStatus } from '../channels/conversation.mapper.js';
import { AppConfig } from '../config/app-config.js';

/**
 * Who is online on this instance: a user is online while at least one of their connections is
 * open. Going offline waits PRESENCE_GRACE_MS after the last connection closes, so a quick
 * reconnect (a page reload, a network switch) does not flap online → offline → online.
 */
@Injectable()
export class PresenceService {
  private readonly connections = new Map<string, number>();
  private readonly goingOffline = new Map<string, NodeJS.Timeout>();

  constructor(private readonly config: AppConfig) {}

  statusOf = (userId: string): PresenceStatus =>
    this.connections.has(userId) || this.goingOffline.has(userId) ? 'online' : 'offline';

  /** Counts a new connection; true when the user just came online (not a reconnect in grace). */
  connected(userId: string): boolean {
    const pending = this.goingOffline.get(userId);
    if (pending) {
      clearTimeout(pending);
      this.goingOffline.delete(userId);
    }
    const n = (this.connections.get(userId) ?? 0) + 1;
    this.connections.set(userId, n);
    return n === 1 && !pending;
  }

  /** Counts a closed connection; `onOffline` runs once the user has really gone. */
  disconnected(userId: string, onOffline: () => void): void {
    const n = (this.connections.get(userId) ?? 0) - 1;
    if (n > 0) {
      this.connections.set(userId, n);
      return;
    }
    this.connections.delete(userId);
    if (this.config.presenceGraceMs === 0) return onOffline();
    const timer = setTimeout(() => {
      this.goingOffline.delete(userId);
      onOffline();
    }, this.config.presenceGraceMs);
    timer.unref();
    this.goingOffline.set(userId, timer);
  }

  clear(): void {
    for (const t of this.goingOffline.values()) clearTimeout(t);
    this.goingOffline.clear();
  }
}
