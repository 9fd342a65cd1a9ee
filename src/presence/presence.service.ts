import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { PresenceStatus } from '../channels/conversation.mapper.js';
import { AppConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import type { UserRef } from '../users/user.mapper.js';
import { UsersService } from '../users/users.service.js';
import { PresenceDirectory } from './presence-directory.js';

/**
 * Who is online. A user is online while at least one of their connections is open, on any
 * instance. Going offline waits PRESENCE_GRACE_MS after the last connection closes, so a quick
 * reconnect (a page reload, a network switch, a restarted instance) does not flap
 * online → offline → online.
 *
 * This instance counts its own connections; the directory (Redis with several instances) says
 * whether a transition here is one for everybody. Transitions are published on the bus as
 * `presence.changed`, and every instance keeps the set of users online anywhere from them.
 */
@Injectable()
export class PresenceService implements OnModuleInit {
  private readonly logger = new Logger('Presence');
  private readonly connections = new Map<string, { user: UserRef; count: number }>();
  private readonly goingOffline = new Map<string, { user: UserRef; timer: NodeJS.Timeout }>();
  /** Users online on any instance, as the bus has told. */
  private readonly online = new Set<string>();

  constructor(
    private readonly config: AppConfig,
    private readonly directory: PresenceDirectory,
    private readonly bus: FanoutBus,
    private readonly users: UsersService,
  ) {
    bus.on('presence.changed', ({ user, status }) => {
      if (status === 'online') this.online.add(user.id);
      else this.online.delete(user.id);
    }, 'state');
  }

  async onModuleInit(): Promise<void> {
    for (const id of (await this.directory.online()) ?? []) this.online.add(id);
    this.directory.start({
      held: () => [...this.connections.values(), ...this.goingOffline.values()].map((e) => e.user),
      onGone: (users) => {
        for (const user of users) this.announce(user, 'offline');
      },
      onSnapshot: (online) => {
        // Users held by nobody any more (their instance died while Redis was away): offline.
        for (const id of this.online) if (!online.has(id) && !this.holds(id)) this.online.delete(id);
        for (const id of online) this.online.add(id);
      },
    });
  }

  statusOf = (userId: string): PresenceStatus => (this.holds(userId) || this.online.has(userId) ? 'online' : 'offline');

  private holds(userId: string): boolean {
    return this.connections.has(userId) || this.goingOffline.has(userId);
  }

  /** Counts a new connection; the user comes online unless they were already (here, in grace, or elsewhere). */
  connected(user: UserRef): void {
    const pending = this.goingOffline.get(user.id);
    if (pending) {
      clearTimeout(pending.timer);
      this.goingOffline.delete(user.id);
    }
    const entry = this.connections.get(user.id);
    if (entry) {
      entry.count++;
      return;
    }
    this.connections.set(user.id, { user, count: 1 });
    if (pending) return; // a reconnect within the grace: never went away
    void this.directory.hold(user).then((first) => {
      if (first) this.announce(user, 'online');
    });
  }

  /** Counts a closed connection; the user goes offline once the grace is over, if nobody holds them then. */
  disconnected(user: UserRef): void {
    const entry = this.connections.get(user.id);
    if (!entry) return;
    if (--entry.count > 0) return;
    this.connections.delete(user.id);
    if (this.config.presenceGraceMs === 0) return void this.goOffline(user);
    const timer = setTimeout(() => {
      this.goingOffline.delete(user.id);
      void this.goOffline(user);
    }, this.config.presenceGraceMs);
    timer.unref();
    this.goingOffline.set(user.id, { user, timer });
  }

  private async goOffline(user: UserRef): Promise<void> {
    const last = await this.directory.release(user);
    // Back meanwhile: the connect's hold has taken them again.
    if (last && !this.holds(user.id)) this.announce(user, 'offline');
  }

  private announce(user: UserRef, status: PresenceStatus): void {
    const at = Date.now();
    this.bus.publish('presence.changed', { user, status, lastSeenAt: new Date(at).toISOString() });
    this.users.touchLastSeen(user.id, at).catch((err: Error) => this.logger.warn(`lastSeenAt not stored: ${err.message}`));
  }

  /** Shutdown: nothing is announced from here; the others see this instance's users go after the grace. */
  async stop(): Promise<void> {
    for (const { timer } of this.goingOffline.values()) clearTimeout(timer);
    this.goingOffline.clear();
    await this.directory.stop(this.config.presenceGraceMs);
  }
}
