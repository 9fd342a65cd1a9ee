import { Module } from '@nestjs/common';
import { ChannelsModule } from '../channels/channels.module.js';
import { MessagesModule } from '../messages/messages.module.js';
import { UsersModule } from '../users/users.module.js';
import { AsyncApiController } from './asyncapi.controller.js';
import { ChatGateway } from './chat.gateway.js';
import { ConnectionRegistry } from './connection-registry.js';
import { ChannelSequencer } from './channel-sequencer.js';
import { FanoutService } from './fanout.service.js';
import { RealtimeService } from './realtime.service.js';
import { SessionService } from './session.service.js';
import { WsErrorFilter } from './ws-exception.filter.js';

@Module({
  imports: [ChannelsModule, MessagesModule, UsersModule],
  controllers: [AsyncApiController],
  providers: [
    ChatGateway,
    SessionService,
    RealtimeService,
    FanoutService,
    ConnectionRegistry,
    ChannelSequencer,
    WsErrorFilter,
  ],
  exports: [SessionService],
})
export class RealtimeModule {}
