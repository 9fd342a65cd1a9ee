import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { RedisClients } from '../fanout/redis-clients.js';

@Injectable()
export class HealthService {
  private draining = false;

  constructor(
    private readonly db: DataSource,
    // null without REDIS_URL (a union type has no runtime token: named explicitly)
    @Inject(RedisClients) private readonly redis: RedisClients | null,
  ) {}

  /** Set at shutdown so load balancers stop sending new clients here. */
  markDraining(): void {
    this.draining = true;
  }

  async ready(): Promise<{ status: 'ok'; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    if (this.draining) throw new AppError('unavailable', 'shutting down', { checks: { server: 'draining' } });
    try {
      await this.db.query('SELECT 1');
      checks.database = 'ok';
    } catch {
      checks.database = 'down';
    }
    if (this.redis) {
      // Both connections: commands (publish, presence) and the bus subscription.
      try {
        await this.redis.commands.ping();
        checks.redis = this.redis.subscriber.status === 'ready' ? 'ok' : 'down';
      } catch {
        checks.redis = 'down';
      }
    }
    if (Object.values(checks).some((c) => c !== 'ok')) throw new AppError('unavailable', 'not ready', { checks });
    return { status: 'ok', checks };
  }
}
