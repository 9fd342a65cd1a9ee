import { isIP } from 'node:net';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { RateLimitedError } from '../common/app-error.js';
import { AppConfig, type HttpRateLimits } from '../config/app-config.js';

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
export class HttpRateLimiter implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger('HttpRateLimiter');
  private readonly byRoute = new Map<RouteClass, NamedLimiter[]>();
  private readonly redis: Redis | null = null;
  private degraded = false;

  constructor(config: AppConfig) {
    const limits = config.httpRateLimits;
    if (!limits) return;
    if (config.redisUrl) {
      // No offline queue and a short timeout: a request waits at most that long for its counters.
      this.redis = new Redis(config.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500 });
      this.redis.on('error', (err: Error) => this.degrade(err.message));
      this.redis.on('ready', () => this.recover());
    }
    for (const { name, setting, routes, key, says } of LIMITS) {
      const limit = limits[setting];
      if (!limit) continue;
      const options = { keyPrefix: `parley:rate:${name}`, points: limit.limit, duration: limit.windowSeconds };
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
  }

  async onModuleInit(): Promise<void> {
    // Connected before the first request when Redis is up; a Redis that is down does not stop
    // the boot (ioredis keeps reconnecting, memory counts meanwhile).
    await this.redis?.connect().catch((err: Error) => this.degrade(err.message));
  }

  /** Counts one request against every limit of its route class; throws RateLimitedError past one. */
  async check(routes: RouteClass, req: LimitedRequest): Promise<void> {
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

  onApplicationShutdown(): void {
    this.redis?.disconnect();
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
