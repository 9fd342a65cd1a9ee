import { Body, Controller, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth.service.js';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { ChannelsService } from './channels.service.js';
import { ConversationView } from './conversation.mapper.js';
import { ChannelDirectoryQueryDto, ChannelSummary, CreateChannelDto, CreateDmDto, JoinResult } from './dto/channel.dto.js';

@ApiTags('channels')
@Authenticated()
@ApiError(400)
@Controller()
export class ChannelsController {
  constructor(private readonly channels: ChannelsService) {}

  @Get('conversations')
  @ApiOperation({ summary: "The caller's conversations, most recent first, with unread counts" })
  @ApiOkResponse({ type: ConversationView, isArray: true })
  conversations(@CurrentUser() user: AuthUser): Promise<ConversationView[]> {
    return this.channels.conversations(user.id);
  }

  @Post('channels')
  @ApiOperation({ summary: 'Create a channel; private ones are joined by invitation (members)' })
  @ApiCreatedResponse({ type: ChannelSummary })
  @ApiError(404, 'a listed member does not exist')
  @ApiError(409, 'the name is taken')
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

  @Post('dms')
  @HttpCode(200)
  @ApiOperation({ summary: 'Get or create the DM channel with a user' })
  @ApiOkResponse({ type: ConversationView })
  @ApiError(404, 'no such user')
  async dm(@CurrentUser() user: AuthUser, @Body() dto: CreateDmDto): Promise<ConversationView> {
    const { state } = await this.channels.getOrCreateDm(user, dto.username);
    return this.channels.conversationFor(state, user.id);
  }
}
