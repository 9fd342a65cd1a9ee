import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UsersModule } from '../users/users.module.js';
import { Channel } from './channel.entity.js';
import { ChannelAdminController } from './channel-admin.controller.js';
import { ChannelAdminService } from './channel-admin.service.js';
import { ChannelQuotas } from './channel-quotas.js';
import { ChannelStateStore } from './channel-state.store.js';
import { ChannelsController } from './channels.controller.js';
import { ChannelsService } from './channels.service.js';
import { Membership } from './membership.entity.js';

@Module({
  imports: [TypeOrmModule.forFeature([Channel, Membership]), UsersModule],
  controllers: [ChannelsController, ChannelAdminController],
  providers: [ChannelsService, ChannelAdminService, ChannelQuotas, ChannelStateStore],
  exports: [ChannelsService, ChannelStateStore],
})
export class ChannelsModule {}
