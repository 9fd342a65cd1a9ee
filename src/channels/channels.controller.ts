import { Body, Controller, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth.service.js';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { ChannelsService } from './channels.service.js';
import { ConversationView } from './conversation.mapper.js';
import { ConversationsQueryDto } from './dto/channel-admin.dto.js';
import { ChannelDirectoryQueryDto, ChannelSummary, CreateChannelDto, CreateDmDto, JoinResult } from './dto/channel.dto.js';

@ApiTags('channels')
@Authenticated()
@ApiError(400)
@Controller()
export class ChannelsController {
  constructor(private readonly channels: ChannelsService) {}

  @Get('conversations')
  @ApiOperation({
    summary: "The caller's conversations, most recent first, with unread counts",
    description:
      'Without `limit` and `before`: the whole list (as in v1). Paged: at most `limit`, after the conversation `before` ' +
      '(the `channelId` of the last one of the previous page); a page shorter than `limit` is the last. Always an array. ' +
      'DMs you hid are left out until their next message.',
  })
  @ApiOkResponse({ type: ConversationView, isArray: true })
  @ApiError(404, '`before` is not one of your listed conversations')
  conversations(@CurrentUser() user: AuthUser, @Query() q: ConversationsQueryDto): Promise<ConversationView[]> {
    return this.channels.conversations(user.id, q);
  }

  @Post('channels')
  @ApiOperation({
    summary: 'Create a channel; private ones are joined by invitation (members)',
    description:
      'The listed `members` are invited: the channel is a request for them until they accept it (post in it, read it, ' +
      'or `POST /channels/{id}/accept`); they may also leave it. Users who blocked the caller are left out of the ' +
      'channel without an error (only `memberCount` shows it). Names are unique among public channels ' +
      '(case-insensitive); a private channel may not take a public channel\'s name, but private names are not unique: ' +
      'a name used only by private channels you cannot see never makes a create fail, so nothing reveals that they exist.',
  })
  @ApiCreatedResponse({ type: ChannelSummary })
  @ApiError(403, 'over a quota (`details.quota`): channels created per user, or channels per user (yours or a listed member\'s)')
  @ApiError(404, 'a listed member does not exist')
  @ApiError(409, 'a public channel has this name')
  create(@CurrentUser() user: AuthUser, @Body() dto: CreateChannelDto): Promise<ChannelSummary> {
    return this.channels.create(user, dto);
  }

  @Get('channels')
  @ApiOperation({ summary: 'Directory of public channels' })
  @ApiOkResponse({ type: ChannelSummary, isArray: true })
  directory(@CurrentUser() user: AuthUser, @Query() q: ChannelDirectoryQueryDto): Promise<ChannelSummary[]> {
    return this.channels.directory(user.id, q.query, q.limit);
  }

  @Post('channels/:id/join')
  @HttpCode(200)
  @ApiOperation({ summary: 'Join a public channel (idempotent)' })
  @ApiOkResponse({ type: JoinResult })
  @ApiError(403, 'you are in QUOTA_CHANNELS_PER_USER channels already (`details.quota`)')
  @ApiError(404, 'no such channel, or a private one')
  join(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<JoinResult> {
    return this.channels.join(user, id);
  }

  @Post('channels/:id/leave')
  @HttpCode(204)
  @ApiOperation({ summary: 'Leave a channel (DMs cannot be left)' })
  @ApiResponse({ status: 204, description: 'left' })
  @ApiError(403, 'not a member, or a DM')
  @ApiError(404)
  leave(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<void> {
    return this.channels.leave(user, id);
  }

  @Post('channels/:id/accept')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Accept a conversation someone else put you in (idempotent)',
    description:
      'A DM someone opened with you, or a channel someone created with you in `members`, is a request until you accept ' +
      'it: by posting in it, by reading a channel (`read`), or here. Presence flows through a conversation only once both ' +
      'sides have accepted it. Your other connections get a `conversation.update` (`accepted: true`).',
  })
  @ApiOkResponse({ type: ConversationView })
  @ApiError(403, 'not a member of this public channel')
  @ApiError(404, 'no such channel (or a private one you are not in)')
  accept(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<ConversationView> {
    return this.channels.accept(user, id);
  }

  @Post('dms')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Get or create the DM channel with a user',
    description:
      'A new DM is accepted by you and a request for the peer until they post in it or accept it; until then ' +
      "`peer.status` is `offline` (you see a user's presence only through a conversation you both accepted).",
  })
  @ApiOkResponse({ type: ConversationView })
  @ApiError(403, 'no DM exists and one of you blocked the other, or a new DM would put one of you over the channels-per-user quota (`details.quota`)')
  @ApiError(404, 'no such user')
  async dm(@CurrentUser() user: AuthUser, @Body() dto: CreateDmDto): Promise<ConversationView> {
    const { state } = await this.channels.getOrCreateDm(user, dto.username);
    return this.channels.conversationFor(state, user.id);
  }
}
