import { UseGuards } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { HistoryQueryDto } from '../messages/dto/message.dto.js';
import { ChatGateway, HOT_EVENTS } from './chat.gateway.js';
import { ChannelFrameDto, FrameDto, ReadFrameDto, SendFrameDto } from './dto/frames.dto.js';
import { fastRoutes } from './fast-routes.js';
import type { RealtimeService } from './realtime.service.js';
import type { SessionService } from './session.service.js';

describe('fastRoutes', () => {
  it("reads the hot events' handlers and DTOs from the gateway's decorators", () => {
    const calls: unknown[][] = [];
    const realtime = Object.fromEntries(['send', 'read', 'typing', 'pong'].map((m) => [m, (...args: unknown[]) => calls.push([m, ...args])]));
    const gateway = new ChatGateway({} as SessionService, realtime as unknown as RealtimeService);
    const routes = fastRoutes(gateway, HOT_EVENTS);
    expect(Object.fromEntries([...routes].map(([event, r]) => [event, r.dto]))).toEqual({
      'message.send': SendFrameDto, read: ReadFrameDto, typing: ChannelFrameDto, ping: FrameDto,
    });
    const socket = {} as WebSocket;
    const dto = new FrameDto();
    routes.get('message.send')!.call(socket, dto);
    routes.get('ping')!.call(socket, dto);
    // The gateway's own methods, given the DTO where @MessageBody is (and the socket's connection).
    expect(calls).toEqual([['send', undefined, dto], ['pong', dto]]);
  });

  it('refuses, at startup, a handler that asks for more than the fast path does', () => {
    class Guarded {
      @SubscribeMessage('x') @UseGuards(class {})
      x(@ConnectedSocket() _s: WebSocket, @MessageBody() dto: FrameDto) { return dto; }
    }
    expect(() => fastRoutes(new Guarded(), ['x'])).toThrow(/__guards__/);

    class Uncompiled {
      @SubscribeMessage('y')
      y(@MessageBody() dto: HistoryQueryDto) { return dto; }
    }
    expect(() => fastRoutes(new Uncompiled(), ['y'])).toThrow(/does not compile/);
    expect(() => fastRoutes(new Uncompiled(), ['z'])).toThrow(/no handler for z/);
  });
});
