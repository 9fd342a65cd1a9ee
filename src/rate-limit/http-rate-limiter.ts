import { isIP } from 'node:net';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { RateLimitedError } from '../common/app-error.js';
import { AppConfig, type HttpRateLimits } from '../config/app-config.js';
import { RedisClients } from '../fanout/redis-clients.js';

/** What a route counts against (docs/security.md). */
export type RouteClass = 'login' | 'register' | 'write' | 'read';

/** The parts of an Express request the limits read. */
export interface LimitedRequest {
  ip?: string;
  socket?: { remoteAddress?: string };
  body?: unknown;
  user?: { id: string };
}

/**
 * The client an address stands for: an IPv4 address as is (IPv4-mapped IPv6 included), an IPv6
 * address as its /64, the smallest block a subscriber gets: counting single IPv6 addresses would
 * give one attacker 2^64 budgets.
 */
export function addressKey(ip: string): string {
  const bare = ip.split('%')[0];
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i.exec(bare);
  if (mapped) return mapped[1];
  if (isIP(bare) !== 6) return bare;
  const [head, tail] = bare.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const left = groups(head);
  const right = groups(tail);
  const all = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

const clientIp = (req: LimitedRequest) => addressKey(req.ip ?? req.socket?.remoteAddress ?? 'unknown');
/** The account a login targets, as login compares it (case-insensitively); read before validation, so bounded. */
const targetUsername = (req: LimitedRequest) => {
  const name = (req.body as { username?: unknown } | undefined)?.username;
  return typeof name === 'string' ? name.slice(0, 64).toLowerCase() : '';
};
const loginKey = (ip: string | null, username: string) => `${addressKey(ip ?? 'unknown')}|${username.slice(0, 64).toLowerCase()}`;
// Behind @Authenticated() the token is checked first, so there always is a user.
const userId = (req: LimitedRequest) => req.user?.id ?? clientIp(req);

/** The named limits: their setting, the routes they count, and whose requests count together. */
const LIMITS: { name: string; setting: keyof HttpRateLimits; routes: RouteClass; key: (req: LimitedRequest) => string; says: string }[] = [
  { name: 'login', setting: 'login', routes: 'login', key: (req) => `${clientIp(req)}|${targetUsername(req)}`, says: 'too many login attempts' },
  { name: 'login-ip', setting: 'loginIp', routes: 'login', key: clientIp, says: 'too many login attempts from this address' },
  { name: 'login-user', setting: 'loginUser', routes: 'login', key: targetUsername, says: 'too many login attempts for this account' },
  { name: 'register', setting: 'register', routes: 'register', key: clientIp, says: 'too many accounts created from this address' },
  { name: 'write', setting: 'write', routes: 'write', key: userId, says: 'too many writes' },
  { name: 'read', setting: 'read', routes: 'read', key: userId, says: 'too many requests' },
];

/** Failed logins in a row (per address and username) that cost no wait; each one after doubles it. */
const FREE_LOGIN_FAILURES = 5;
/** The longest wait between two login attempts after failures in a row. */
const MAX_LOGIN_BACKOFF_SECONDS = 15 * 60;

interface NamedLimiter {
  name: string;
  key: (req: LimitedRequest) => string;
  says: string;
  limiter: RateLimiterAbstract;
}

/**
 * The HTTP rate limits, on `rate-limiter-flexible`: fixed windows counted in Redis when REDIS_URL
 * is set (one atomic Lua script per limit and request, shared by every instance), in memory
 * otherwise. When Redis does not answer, each instance counts in memory until it does (limits
 * per instance rather than none), and says so once in the log.
 */
@Injectable()
export class HttpRateLimiter {
  private readonly log = new Logger('HttpRateLimiter');
  private readonly byRoute = new Map<RouteClass, NamedLimiter[]>();
  private readonly redis: Redis | null = null;
  private degraded = false;
  /** Consecutive failed logins per address and username (a day's memory), and the wait they earned. */
  private readonly loginFailures: RateLimiterAbstract | null = null;
  private readonly loginBackoff: RateLimiterAbstract | null = null;

  constructor(
    config: AppConfig,
    // The instance's command connection (null without REDIS_URL): no offline queue and a short
    // timeout, so a request waits at most that long for its counters.
    @Inject(RedisClients) clients: RedisClients | null,
  ) {
    const limits = config.httpRateLimits;
    if (!limits) return;
    if (clients) {
      this.redis = clients.commands;
      this.redis.on('error', (err: Error) => this.degrade(err.message));
      this.redis.on('ready', () => this.recover());
    }
    for (const { name, setting, routes, key, says } of LIMITS) {
      const limit = limits[setting];
      if (!limit) continue;
      const options = { keyPrefix: `${config.redisPrefix}:rate:${name}`, points: limit.limit, duration: limit.windowSeconds };
      const memory = new RateLimiterMemory(options);
      const limiter = this.redis
        ? new RateLimiterRedis({
            ...options,
            storeClient: this.redis,
            rejectIfRedisNotReady: true,
            insuranceLimiter: memory,
            // A key over its limit is answered from memory for the rest of its window: a flood
            // does not become a flood of Redis calls.
            inMemoryBlockOnConsumed: limit.limit + 1,
          })
        : memory;
      this.byRoute.set(routes, [...(this.byRoute.get(routes) ?? []), { name, key, says, limiter }]);
    }
    if (limits.login) {
      const limitsPrefix = config.redisPrefix;
      this.loginFailures = this.store({ keyPrefix: `${limitsPrefix}:rate:login-failures`, points: 1_000_000, duration: 24 * 3600 });
      this.loginBackoff = this.store({ keyPrefix: `${limitsPrefix}:rate:login-backoff`, points: 1, duration: 1 });
    }
  }

  private store(options: { keyPrefix: string; points: number; duration: number }): RateLimiterAbstract {
    const memory = new RateLimiterMemory(options);
    return this.redis ? new RateLimiterRedis({ ...options, storeClient: this.redis, rejectIfRedisNotReady: true, insuranceLimiter: memory }) : memory;
  }

  /**
   * Growing delays against guessing: after FREE_LOGIN_FAILURES failed logins in a row for one
   * username from one address, each further attempt must wait 1 s, then 2, 4, … up to 15 min
   * after the previous failure; a successful login forgets the failures.
   */
  async loginFailed(ip: string | null, username: string): Promise<void> {
    if (!this.loginFailures || !this.loginBackoff) return;
    const key = loginKey(ip, username);
    try {
      const { consumedPoints } = await this.loginFailures.penalty(key, 1);
      const over = consumedPoints - FREE_LOGIN_FAILURES;
      if (over > 0) await this.loginBackoff.block(key, Math.min(MAX_LOGIN_BACKOFF_SECONDS, 2 ** (over - 1)));
    } catch (err) {
      this.log.warn(`login back-off not recorded: ${(err as Error).message}`);
    }
  }

  async loginSucceeded(ip: string | null, username: string): Promise<void> {
    if (!this.loginFailures || !this.loginBackoff) return;
    const key = loginKey(ip, username);
    await Promise.allSettled([this.loginFailures.delete(key), this.loginBackoff.delete(key)]);
  }

  private async checkLoginBackoff(req: LimitedRequest): Promise<void> {
    await this.checkBackoff(req.ip ?? req.socket?.remoteAddress ?? null, targetUsername(req), 'too many failed logins in a row');
  }

  /**
   * The growing delays of loginFailed, for any credential: refuses (429) while `account` from
   * `ip` must wait. The server API's keys use it with a fixed account name.
   */
  async checkBackoff(ip: string | null, account: string, says: string): Promise<void> {
    if (!this.loginBackoff) return;
    const res = await this.loginBackoff.get(loginKey(ip, account)).catch(() => null);
    if (res && res.consumedPoints > 1 && res.msBeforeNext > 0) {
      throw RateLimitedError.create(`${says}; retry in ${Math.ceil(res.msBeforeNext / 1000)} s`, res.msBeforeNext);
    }
  }

  /** Counts one request against every limit of its route class; throws RateLimitedError past one. */
  async check(routes: RouteClass, req: LimitedRequest): Promise<void> {
    if (routes === 'login') await this.checkLoginBackoff(req);
    const named = this.byRoute.get(routes);
    if (!named) return;
    const results = await Promise.allSettled(named.map((n) => n.limiter.consume(n.key(req))));
    let refused: { says: string; ms: number } | undefined;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') return;
      if (result.reason instanceof RateLimiterRes) {
        if (!refused || result.reason.msBeforeNext > refused.ms) refused = { says: named[i].says, ms: result.reason.msBeforeNext };
      } else {
        // A store failure the memory insurance did not absorb: let the request through.
        this.log.warn(`rate limit ${named[i].name} failed: ${(result.reason as Error)?.message}`);
      }
    });
    if (refused) {
      const retryAfterMs = Math.max(1, refused.ms);
      throw RateLimitedError.create(`${refused.says}; retry in ${Math.ceil(retryAfterMs / 1000)} s`, retryAfterMs);
    }
  }

  /**
   * One write budget per user, shared by HTTP and WebSocket: a `message.send`, `channel.join` or
   * `channel.leave` frame counts against the same HTTP_RATE_LIMIT_WRITE as a POST does.
   */
  checkWrite(userId: string): Promise<void> {
    return this.check('write', { user: { id: userId } });
  }

  /** Whether checkWrite counts anything (HTTP_RATE_LIMIT on and a write limit set): the send path skips it otherwise. */
  get limitsWrites(): boolean {
    return this.byRoute.has('write');
  }

  private degrade(reason: string): void {
    if (this.degraded) return;
    this.degraded = true;
    this.log.warn(`Redis is unreachable (${reason}): HTTP rate limits are counted per instance until it is back`);
  }

  private recover(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.log.log('Redis is back: HTTP rate limits are shared across instances again');
  }
}
