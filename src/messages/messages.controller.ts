import { Body, Controller, Delete, Get, HttpCode, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { AuthUser } from '../auth/auth.service.js';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import { ConversationView } from '../channels/conversation.mapper.js';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { PatternParam, SeqParam } from '../common/path-params.decorator.js';
import {
  EditBodyDto, EMOJI_MAX_LENGTH, EMOJI_PATTERN, HistoryPage, HistoryQueryDto, MessageBodyDto, MessageResult, ReadMarkerDto, SearchPage, SearchQueryDto, SendResult,
} from './dto/message.dto.js';
import { MAX_REACTION_EMOJI } from './message-writer.js';

const EmojiParam = () => PatternParam('emoji', EMOJI_PATTERN, EMOJI_MAX_LENGTH, 'must be one emoji or a :short_name:', 'one emoji (URL-encoded), or a :short_name:');
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
  @ApiError(409, 'replyToSeq: the answered message was deleted')
  async send(
    @CurrentUser() user: AuthUser,
    @UuidParam() id: string,
    @Body() dto: MessageBodyDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<SendResult> {
    const outcome = await this.messages.send(user, { channelId: id, text: dto.text, clientMsgId: dto.clientMsgId, replyToSeq: dto.replyToSeq });
    if (outcome.duplicate) res.status(200);
    return outcome;
  }

  @Patch('messages/:seq')
  @ApiOperation({ summary: 'Edit your own message (v1.1): message.updated goes to every member connection; the same text again changes nothing' })
  @ApiOkResponse({ type: MessageResult })
  @ApiError(404, 'no such channel, or no such message in it')
  @ApiError(409, 'the message was deleted')
  async edit(@CurrentUser() user: AuthUser, @UuidParam() id: string, @SeqParam() seq: number, @Body() dto: EditBodyDto): Promise<MessageResult> {
    return { message: (await this.messages.edit(user, id, seq, dto.text)).message };
  }

  @Delete('messages/:seq')
  @ApiOperation({ summary: "Delete a message (v1.1): yours, or any as the channel's owner or an admin. It stays as a tombstone (same seq, empty text); again changes nothing" })
  @ApiOkResponse({ type: MessageResult, description: 'the tombstone' })
  async remove(@CurrentUser() user: AuthUser, @UuidParam() id: string, @SeqParam() seq: number): Promise<MessageResult> {
    return { message: (await this.messages.remove(user, id, seq)).message };
  }

  @Put('messages/:seq/reactions/:emoji')
  @ApiOperation({ summary: `React (v1.1); idempotent. At most ${MAX_REACTION_EMOJI} different emoji per message (409 beyond)` })
  @ApiOkResponse({ type: MessageResult })
  @ApiError(409, 'the message was deleted, or it carries the most different reactions already')
  async react(@CurrentUser() user: AuthUser, @UuidParam() id: string, @SeqParam() seq: number, @EmojiParam() emoji: string): Promise<MessageResult> {
    return { message: (await this.messages.react(user, id, seq, emoji, true)).message };
  }

  @Delete('messages/:seq/reactions/:emoji')
  @ApiOperation({ summary: 'Take your reaction back (v1.1); idempotent' })
  @ApiOkResponse({ type: MessageResult })
  @ApiError(409, 'the message was deleted')
  async unreact(@CurrentUser() user: AuthUser, @UuidParam() id: string, @SeqParam() seq: number, @EmojiParam() emoji: string): Promise<MessageResult> {
    return { message: (await this.messages.react(user, id, seq, emoji, false)).message };
  }

  @Post('read')
  @HttpCode(200)
  @ApiOperation({ summary: 'Move the read marker forward (reading a channel someone added you to accepts it; a DM is not accepted by reading)' })
  @ApiOkResponse({ type: ConversationView })
  read(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: ReadMarkerDto): Promise<ConversationView> {
    return this.messages.markRead(user, id, dto.seq);
  }
}

@ApiTags('messages')
@Authenticated()
@ApiError(400, 'a query with no word in it, or a bad cursor')
@Controller('search')
export class SearchController {
  constructor(private readonly messages: MessagesService) {}

  @Get('messages')
  @ApiOperation({ summary: 'Full-text search (v1.1) over your channels, newest first; each hit is the message, with its channelId and seq' })
  @ApiOkResponse({ type: SearchPage })
  @ApiError(403, 'channelId: not a member of this public channel')
  @ApiError(404, 'channelId: no such channel (or a private one you are not in)')
  search(@CurrentUser() user: AuthUser, @Query() q: SearchQueryDto): Promise<SearchPage> {
    return this.messages.search(user, q);
  }
}
