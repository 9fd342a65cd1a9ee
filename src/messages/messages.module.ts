import { Module } from '@nestjs/common';
import { ChannelsModule } from '../channels/channels.module.js';
import { MessageStore } from './message-store.js';
import { MessageWriter } from './message-writer.js';
import { MessagesController } from './messages.controller.js';
import { MessagesService } from './messages.service.js';

@Module({
  imports: [ChannelsModule],
  controllers: [MessagesController],
  providers: [MessagesService, MessageWriter, MessageStore],
  exports: [MessagesService, MessageWriter, MessageStore],
})
export class MessagesModule {}
