import type { IncomingMessage } from 'node:http';
import { UseFilters, UsePipes } from '@nestjs/common';
import {
  ConnectedSocket, MessageBody, OnGatewayConnection, OnGatewayDisconnect, SubscribeMessage, WebSocketGateway,
} from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { createValidationPipe } from '../common/validation.js';
import {
  ChangeFrameDto, ChannelFrameDto, EditFrameDto, FrameDto, HistoryFrameDto, JoinFrameDto, ReactionFrameDto, ReadFrameDto, SendFrameDto, SyncFrameDto,
} from './dto/frames.dto.js';
import { RealtimeService } from './realtime.service.js';
import type { Reply, Serialized } from './server-events.js';
import { SessionService, connectionOf } from './session.service.js';
import { WsErrorFilter } from './ws-exception.filter.js';

/**
 * The hot events: ParleyWsAdapter calls their handlers below directly (fast-routes.ts), with the
 * DTO's compiled validator, without Nest's per-frame pipe, filter, context and rxjs machinery.
 * Their payloads that the compiled validator does not accept still go through Nest (the pipe
 * words the error), and so do all other events.
 */
export const HOT_EVENTS = ['message.send', 'read', 'typing', 'ping'] as const;

/**
 * Protocol v1 at /ws. Thin on purpose: each handler takes a validated frame and delegates.
 * Errors (validation included) become `error` frames through WsErrorFilter.
 */
@WebSocketGateway({ path: '/ws' })
@UsePipes(createValidationPipe())
@UseFilters(WsErrorFilter)
export class ChatGateway implements OnGatewayConnection, OnGatewayDisconnect {
  constructor(
    private readonly session: SessionService,
    private readonly realtime: RealtimeService,
  ) {}

  handleConnection(socket: WebSocket, req: IncomingMessage): void {
    this.session.connect(socket, req);
  }

  handleDisconnect(socket: WebSocket): void {
    this.session.disconnect(socket);
  }

  @SubscribeMessage('message.send')
  send(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: SendFrameDto): Promise<Serialized<'message.ack'>> {
    return this.realtime.send(connectionOf(socket)!, dto);
  }

  @SubscribeMessage('channel.join')
  join(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: JoinFrameDto): Promise<Reply<'channel.joined'>> {
    return this.realtime.join(connectionOf(socket)!, dto);
  }

  @SubscribeMessage('channel.leave')
  leave(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: ChannelFrameDto): Promise<Reply<'channel.left'>> {
    return this.realtime.leave(connectionOf(socket)!, dto);
  }

  @SubscribeMessage('read')
  read(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: ReadFrameDto): Promise<Reply<'conversation.update'>> {
    return this.realtime.read(connectionOf(socket)!, dto);
  }

  @SubscribeMessage('typing')
  typing(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: ChannelFrameDto): Promise<void> {
    return this.realtime.typing(connectionOf(socket)!, dto);
  }

  @SubscribeMessage('sync')
  sync(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: SyncFrameDto): Promise<void> {
    return this.realtime.sync(connectionOf(socket)!, dto);
  }

  @SubscribeMessage('message.edit')
  edit(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: EditFrameDto): Promise<Reply<'message.updated'> | undefined> {
    return this.realtime.change(connectionOf(socket)!, dto, 'edit');
  }

  @SubscribeMessage('message.delete')
  delete(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: ChangeFrameDto): Promise<Reply<'message.updated'> | undefined> {
    return this.realtime.change(connectionOf(socket)!, dto, 'delete');
  }

  @SubscribeMessage('reaction.add')
  react(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: ReactionFrameDto): Promise<Reply<'message.updated'> | undefined> {
    return this.realtime.change(connectionOf(socket)!, dto, 'react');
  }

  @SubscribeMessage('reaction.remove')
  unreact(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: ReactionFrameDto): Promise<Reply<'message.updated'> | undefined> {
    return this.realtime.change(connectionOf(socket)!, dto, 'unreact');
  }

  @SubscribeMessage('history')
  history(@ConnectedSocket() socket: WebSocket, @MessageBody() dto: HistoryFrameDto): Promise<Reply<'history.result'>> {
    return this.realtime.history(connectionOf(socket)!, dto);
  }

  @SubscribeMessage('ping')
  ping(@MessageBody() dto: FrameDto): Reply<'pong'> {
    return this.realtime.pong(dto);
  }
}
