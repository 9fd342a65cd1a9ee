import { Module } from '@nestjs/common';
import { ChannelsModule } from '../channels/channels.module.js';
import { UsersModule } from '../users/users.module.js';
import { MessageStore } from './message-store.js';
import { MessageWriter } from './message-writer.js';
import { MessagesController, SearchController } from './messages.controller.js';
import { MessagesService } from './messages.service.js';

@Module({
  imports: [ChannelsModule, UsersModule],
  controllers: [MessagesController, SearchController],
  providers: [MessagesService, MessageWriter, MessageStore],
  exports: [MessagesService, MessageWriter, MessageStore],
})
export class MessagesModule {}
