import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { RedisClients } from '../fanout/redis-clients.js';
import { UsersModule } from '../users/users.module.js';
import { LocalPresenceDirectory, PresenceDirectory, RedisPresenceDirectory } from './presence-directory.js';
import { PresenceService } from './presence.service.js';

@Global()
@Module({
  imports: [UsersModule],
  providers: [
    PresenceService,
    {
      provide: PresenceDirectory,
      inject: [RedisClients, FanoutBus, AppConfig],
      useFactory: (redis: RedisClients | null, bus: FanoutBus, config: AppConfig) =>
        redis ? new RedisPresenceDirectory(redis, bus.instanceId, config) : new LocalPresenceDirectory(),
    },
  ],
  exports: [PresenceService, PresenceDirectory],
})
export class PresenceModule {}
