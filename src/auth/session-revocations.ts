import { Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { RevokedSessions, type RevocationState } from './revoked-sessions.js';
import { SessionStore } from './session.store.js';

/**
 * This instance's knowledge of ended sessions, so that no request or frame costs a query:
 *  - at boot, the sessions ended within one access-token lifetime are read from the database
 *    (after the bus listener is on, so an end is either read or heard, never neither);
 *  - every `session.ended` change, from here or another instance, is added as it comes;
 *  - after the bus was cut (Redis away), the list is read again, and the sessions learned that
 *    way are handed to `onLearned` listeners (the realtime module closes their sockets).
 */
@Injectable()
export class SessionRevocations implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('Sessions');
  private readonly revoked: RevokedSessions;
  private readonly learnedListeners: ((sessionIds: string[]) => void)[] = [];

  constructor(
    private readonly store: SessionStore,
    private readonly bus: FanoutBus,
    private readonly config: AppConfig,
  ) {
    this.revoked = new RevokedSessions(config.jwtTtlSeconds * 1000);
  }

  onModuleInit(): void {
    // The state stage: the set is current before any listener renders or closes anything.
    this.bus.on('session.ended', (change) => {
      const now = Date.now();
      for (const id of change.sessionIds) this.revoked.add(id, now);
    }, 'state');
    this.bus.onResync(() => {
      this.load().catch((err: Error) => this.logger.warn(`reloading ended sessions failed: ${err.message}`));
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.load();
  }

  /** Per request and per frame: a Map look-up. */
  check(sessionId: string): RevocationState {
    return this.revoked.check(sessionId);
  }

  /** The per-frame form: ended or not, as far as memory knows. */
  has(sessionId: string): boolean {
    return this.revoked.has(sessionId);
  }

  /** The database's word, for when memory is unsure: the session exists, is the user's, and is live. */
  async isLive(sessionId: string, userId: string): Promise<boolean> {
    const session = await this.store.find(sessionId);
    if (session?.revokedAt) this.revoked.add(session.id, session.revokedAt);
    return !!session && session.userId === userId && session.revokedAt === null;
  }

  onLearned(listener: (sessionIds: string[]) => void): void {
    this.learnedListeners.push(listener);
  }

  private async load(): Promise<void> {
    const rows = await this.store.revokedSince(Date.now() - this.config.jwtTtlSeconds * 1000);
    const learned = rows.filter((r) => this.revoked.add(r.id, r.revokedAt)).map((r) => r.id);
    if (learned.length === 0) return;
    for (const listener of this.learnedListeners) listener(learned);
  }
}
