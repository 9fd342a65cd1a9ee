import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';

@Injectable()
export class HealthService implements OnModuleDestroy {
  private redis: Redis | null = null;
  private draining = false;

  constructor(
    private readonly db: DataSource,
    config: AppConfig,
  ) {
    if (config.redisUrl) {
      this.redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
      this.redis.on('error', () => undefined); // reported by ready(), not as an unhandled error
    }
  }

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
      try {
        if (this.redis.status === 'wait') await this.redis.connect();
        await this.redis.ping();
        checks.redis = 'ok';
      } catch {
        checks.redis = 'down';
      }
    }
    if (Object.values(checks).some((c) => c !== 'ok')) throw new AppError('unavailable', 'not ready', { checks });
    return { status: 'ok', checks };
  }

  async onModuleDestroy(): Promise<void> {
    this.redis?.disconnect();
  }
}
