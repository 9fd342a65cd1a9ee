import { Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import type { RedisClients } from '../fanout/redis-clients.js';
import type { UserRef } from '../users/user.mapper.js';

/**
 * Who holds a connection of whom, across instances. Each instance counts its own connections
 * (PresenceService); the directory answers the cluster-wide question: did this user just come
 * online anywhere, or just go offline everywhere?
 */
export abstract class PresenceDirectory {
  /** Records that this instance holds the user; true when nobody held them before. */
  abstract hold(user: UserRef): Promise<boolean>;
  /** Records that this instance no longer holds the user; true when nobody holds them now. */
  abstract release(user: UserRef): Promise<boolean>;
  /** True when this user's typing in this channel may go out now (at most once per `ms`, cluster-wide). */
  abstract allowTyping(userId: string, channelId: string, ms: number): Promise<boolean>;
  /** Every user online anywhere, or null when there is nobody else to ask. */
  abstract online(): Promise<Set<string> | null>;
  /**
   * Starts the heartbeats. `held` lists this instance's users (to register again after Redis
   * lost them); `onGone` gets users who went offline because their instance died;
   * `onSnapshot` gets the full online set after a reconnect.
   */
  abstract start(hooks: { held: () => UserRef[]; onGone: (users: UserRef[]) => void; onSnapshot: (online: Set<string>) => void }): void;
  /** Shutdown: this instance's users go offline `graceMs` from now unless they reconnect elsewhere. */
  abstract stop(graceMs: number): Promise<void>;
}

/** One instance: its own counts are the whole truth. */
export class LocalPresenceDirectory extends PresenceDirectory {
  hold(): Promise<boolean> {
    return Promise.resolve(true);
  }
  release(): Promise<boolean> {
    return Promise.resolve(true);
  }
  allowTyping(): Promise<boolean> {
    return Promise.resolve(true);
  }
  online(): Promise<null> {
    return Promise.resolve(null);
  }
  start(): void {}
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** The directory's Redis keys, under REDIS_PREFIX. */
const keys = (prefix: string) => ({
  /** hash: instance id → when it took the user (a user is online while this hash has a field) */
  user: (id: string) => `${prefix}:presence:user:${id}`,
  /** set of every user online anywhere */
  online: `${prefix}:presence:online`,
  /** set of "<user id> <username>" an instance holds, so its users can be let go when it dies */
  instance: (id: string) => `${prefix}:presence:instance:${id}`,
  /** sorted set: instance id → time of its last heartbeat */
  instances: `${prefix}:presence:instances`,
  reaper: (id: string) => `${prefix}:presence:reap:${id}`,
  typing: (userId: string, channelId: string) => `${prefix}:typing:${userId}:${channelId}`,
});

// Atomic, so two instances taking or letting go of the same user cannot both decide wrong.
const HOLD = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
return redis.call('SADD', KEYS[2], ARGV[4])`;
const RELEASE = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('HLEN', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[3]) end
return 0`;

type Scripted = Redis & {
  parleyHold(k1: string, k2: string, k3: string, inst: string, member: string, now: number, userId: string): Promise<number>;
  parleyRelease(k1: string, k2: string, k3: string, inst: string, member: string, userId: string): Promise<number>;
};

const member = (u: UserRef) => `${u.id} ${u.username}`;

/**
 * Several instances: presence in Redis. Each instance heartbeats (a sorted set of instances by
 * last beat, every PRESENCE_TTL_MS / 3). An instance whose beat is older than PRESENCE_TTL_MS is
 * dead: the first live instance to notice takes a lock, lets go of every user it held and
 * announces those who are now held by nobody as offline.
 */
@Injectable()
export class RedisPresenceDirectory extends PresenceDirectory {
  private readonly logger = new Logger('Presence');
  private readonly redis: Scripted;
  private readonly K: ReturnType<typeof keys>;
  private timer: NodeJS.Timeout | null = null;
  private hooks: Parameters<PresenceDirectory['start']>[0] | null = null;

  constructor(
    clients: RedisClients,
    private readonly instanceId: string,
    private readonly config: AppConfig,
  ) {
    super();
    this.redis = clients.commands as Scripted;
    this.K = keys(config.redisPrefix);
    this.redis.defineCommand('parleyHold', { numberOfKeys: 3, lua: HOLD });
    this.redis.defineCommand('parleyRelease', { numberOfKeys: 3, lua: RELEASE });
  }

  async hold(user: UserRef): Promise<boolean> {
    try {
      return (await this.redis.parleyHold(this.K.user(user.id), this.K.online, this.K.instance(this.instanceId), this.instanceId, member(user), Date.now(), user.id)) === 1;
    } catch {
      return true; // Redis away: this instance's view is all there is; registered again on reconnect
    }
  }

  async release(user: UserRef): Promise<boolean> {
    return this.releaseFor(this.instanceId, user).catch(() => true);
  }

  private async releaseFor(instanceId: string, user: UserRef): Promise<boolean> {
    return (await this.redis.parleyRelease(this.K.user(user.id), this.K.online, this.K.instance(instanceId), instanceId, member(user), user.id)) === 1;
  }

  async allowTyping(userId: string, channelId: string, ms: number): Promise<boolean> {
    try {
      return (await this.redis.set(this.K.typing(userId, channelId), '1', 'PX', ms, 'NX')) === 'OK';
    } catch {
      return true; // the local throttle already held back the storm
    }
  }

  async online(): Promise<Set<string> | null> {
    try {
      return new Set(await this.redis.smembers(this.K.online));
    } catch {
      return null;
    }
  }

  start(hooks: Parameters<PresenceDirectory['start']>[0]): void {
    this.hooks = hooks;
    // A (re)connection may follow a Redis restart that lost every key, or a boot without Redis
    // whose holds failed: register this instance's users again (idempotent).
    this.redis.on('ready', () => void this.registerAgain());
    const every = Math.max(100, Math.floor(this.config.presenceTtlMs / 3));
    this.timer = setInterval(() => void this.beat(), every);
    this.timer.unref();
    void this.beat();
  }

  private async beat(): Promise<void> {
    try {
      const now = Date.now();
      await this.redis.zadd(this.K.instances, now, this.instanceId);
      const dead = await this.redis.zrangebyscore(this.K.instances, '-inf', now - this.config.presenceTtlMs);
      for (const id of dead) if (id !== this.instanceId) await this.reap(id);
    } catch {
      // Redis away: try again at the next beat
    }
  }

  /** Lets go of a dead instance's users; exactly one live instance does it (the lock). */
  private async reap(deadId: string): Promise<void> {
    if ((await this.redis.set(this.K.reaper(deadId), this.instanceId, 'PX', this.config.presenceTtlMs, 'NX')) !== 'OK') return;
    const gone: UserRef[] = [];
    for (const entry of await this.redis.smembers(this.K.instance(deadId))) {
      const [id, username] = entry.split(' ');
      const user = { id, username };
      if (await this.releaseFor(deadId, user)) gone.push(user);
    }
    await this.redis.del(this.K.instance(deadId));
    await this.redis.zrem(this.K.instances, deadId);
    this.logger.warn(`instance ${deadId} stopped beating: ${gone.length} user(s) offline`);
    if (gone.length > 0) this.hooks?.onGone(gone);
  }

  /**
   * Redis came back, perhaps empty: take this instance's users again (quietly: for the others
   * they never left), then, once every live instance has had a beat to do the same, read the
   * online set again so that users of instances that died meanwhile go offline here.
   */
  private async registerAgain(): Promise<void> {
    const held = this.hooks?.held() ?? [];
    try {
      const pipeline = this.redis.pipeline() as unknown as Pick<Scripted, 'parleyHold' | 'zadd'> & { exec(): Promise<unknown> };
      for (const user of held) void pipeline.parleyHold(this.K.user(user.id), this.K.online, this.K.instance(this.instanceId), this.instanceId, member(user), Date.now(), user.id);
      void pipeline.zadd(this.K.instances, Date.now(), this.instanceId);
      await pipeline.exec();
    } catch {
      return; // gone again: the next 'ready' retries
    }
    setTimeout(() => {
      void this.online().then((set) => set && this.hooks?.onSnapshot(set));
    }, Math.floor(this.config.presenceTtlMs / 3)).unref();
  }

  async stop(graceMs: number): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    try {
      // Looks dead once the grace is over: users who reconnected elsewhere by then stay online.
      await this.redis.zadd(this.K.instances, Date.now() - this.config.presenceTtlMs + graceMs, this.instanceId);
    } catch {
      // Redis away: the TTL does it
    }
  }
}
