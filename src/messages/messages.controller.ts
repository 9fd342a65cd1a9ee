import { Body, Controller, Get, HttpCode, Post, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { AuthUser } from '../auth/auth.service.js';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import { ConversationView } from '../channels/conversation.mapper.js';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { HistoryPage, HistoryQueryDto, MessageBodyDto, ReadMarkerDto, SendResult } from './dto/message.dto.js';
import { MessagesService } from './messages.service.js';

@ApiTags('messages')
@Authenticated()
@ApiError(400)
@ApiError(403, 'not a member of this public channel; or, sending, a DM between users one of whom blocked the other')
@ApiError(404, 'no such channel (or a private one you are not in)')
@Controller('channels/:id')
export class MessagesController {
  constructor(private readonly messages: MessagesService) {}

  @Get('messages')
  @ApiOperation({ summary: 'History page by seq cursor (ascending; `before` pages back, `after` pages forward)' })
  @ApiOkResponse({ type: HistoryPage })
  history(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Query() q: HistoryQueryDto): Promise<HistoryPage> {
    return this.messages.history(user, id, q);
  }

  @Post('messages')
  @ApiOperation({ summary: 'Send over HTTP (bots, integrations): same guarantees and fan-out as WebSocket' })
  @ApiResponse({ status: 201, type: SendResult, description: 'stored' })
  @ApiResponse({ status: 200, type: SendResult, description: 'a retry: the original message, `duplicate: true`' })
  async send(
    @CurrentUser() user: AuthUser,
    @UuidParam() id: string,
    @Body() dto: MessageBodyDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<SendResult> {
    const outcome = await this.messages.send(user, { channelId: id, text: dto.text, clientMsgId: dto.clientMsgId });
    if (outcome.duplicate) res.status(200);
    return outcome;
  }

  @Post('read')
  @HttpCode(200)
  @ApiOperation({ summary: 'Move the read marker forward (reading a channel someone added you to accepts it; a DM is not accepted by reading)' })
  @ApiOkResponse({ type: ConversationView })
  read(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: ReadMarkerDto): Promise<ConversationView> {
    return this.messages.markRead(user, id, dto.seq);
  }
}
