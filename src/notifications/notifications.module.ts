import { Module } from '@nestjs/common';
import { ChannelsModule } from '../channels/channels.module.js';
import { MuteController } from './mute.controller.js';
import { NotificationsService } from './notifications.service.js';

/** notification.needed (the mobile-push webhook event) and muting, which turns it off per channel. */
@Module({
  imports: [ChannelsModule],
  controllers: [MuteController],
  providers: [NotificationsService],
  exports: [NotificationsService],
})
export class NotificationsModule {}
