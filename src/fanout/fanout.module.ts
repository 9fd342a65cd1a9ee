import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { FanoutBus, LocalFanoutBus } from './fanout-bus.js';
import { RedisClients } from './redis-clients.js';
import { RedisFanoutBus } from './redis-fanout-bus.js';

/**
 * The bus of committed changes: in process for one instance, Redis pub/sub when REDIS_URL is
 * set. `RedisClients` is null without Redis, so the code that uses it can tell at a glance.
 */
@Global()
@Module({
  providers: [
    {
      provide: RedisClients,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => (config.redisUrl ? new RedisClients(config) : null),
    },
    {
      provide: FanoutBus,
      inject: [RedisClients, MetricsService, AppConfig],
      useFactory: (redis: RedisClients | null, metrics: MetricsService, config: AppConfig) =>
        redis ? new RedisFanoutBus(redis, metrics, config.redisPrefix) : new LocalFanoutBus(),
    },
  ],
  exports: [FanoutBus, RedisClients],
})
export class FanoutModule {}
