import { Body, Controller, Delete, Get, HttpCode, Patch, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth.service.js';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { ChannelAdminService } from './channel-admin.service.js';
import { ChannelDetails, InviteMembersDto, MembersPage, MembersQueryDto, MemberView, UpdateChannelDto, UpdateMemberDto } from './dto/channel-admin.dto.js';

const ARCHIVED = 'the channel is archived (`details.reason: archived`)';

/** Channel administration: roles owner/admin/member, details, changes, members, hidden DMs. */
@ApiTags('channels')
@Authenticated()
@ApiError(400)
@ApiError(404, 'no such channel (or a private one you are not in)')
@Controller('channels/:id')
export class ChannelAdminController {
  constructor(private readonly admin: ChannelAdminService) {}

  @Get()
  @ApiOperation({ summary: "A channel's details (members; anyone for a public channel)" })
  @ApiOkResponse({ type: ChannelDetails })
  details(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<ChannelDetails> {
    return this.admin.details(user, id);
  }

  @Patch()
  @ApiOperation({
    summary: 'Rename a channel, set its topic or visibility (owner or admin)',
    description:
      'Members get `channel.updated`. Names stay unique among public channels (case-insensitive); a private channel may ' +
      "not take a public channel's name, but private names are not unique (nothing reveals a private channel).",
  })
  @ApiOkResponse({ type: ChannelDetails })
  @ApiError(403, `not a member of this public channel, not its owner or an admin, a DM, or ${ARCHIVED}`)
  @ApiError(409, 'a public channel has this name')
  update(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: UpdateChannelDto): Promise<ChannelDetails> {
    return this.admin.update(user, id, dto);
  }

  @Post('archive')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Archive a channel (owner): read-only from then on (idempotent)',
    description: 'Members get `channel.updated` (`archived: true`). Sends, joins, invitations, removals, role and channel changes answer 403 `forbidden` with `details.reason: archived`; history, sync and read markers still work, and members may leave.',
  })
  @ApiOkResponse({ type: ChannelDetails })
  @ApiError(403, 'not a member of this public channel, not its owner, or a DM')
  archive(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<ChannelDetails> {
    return this.admin.archive(user, id);
  }

  @Get('members')
  @ApiOperation({
    summary: 'Members with their role and presence, by username, a page at a time (members only)',
    description:
      "A member's `status` is their presence when it flows between you: you both accepted the channel and neither blocked the other; else `offline`. Unlike presence frames, any channel size.",
  })
  @ApiOkResponse({ type: MembersPage })
  @ApiError(403, 'not a member of this public channel')
  members(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Query() q: MembersQueryDto): Promise<MembersPage> {
    return this.admin.members(user, id, q);
  }

  @Post('members')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Invite users (any member of a public channel; the owner or an admin of a private one)',
    description:
      'Each invitee is a member who has not accepted yet (as when listed at the create): they get the conversation and the ' +
      'others `member.joined` with `by`. Users who blocked you, and members already in, are skipped without an error ' +
      '(only `memberCount` shows it).',
  })
  @ApiOkResponse({ type: ChannelDetails })
  @ApiError(403, `not a member of this public channel, not the owner or an admin of this private one, a DM, ${ARCHIVED}, or over a quota (\`details.quota\`: channels per user)`)
  invite(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: InviteMembersDto): Promise<ChannelDetails> {
    return this.admin.invite(user, id, dto);
  }

  @Delete('members/:userId')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Remove a member (owner or admin; an admin removes members, not the owner or admins)',
    description: "The removed user's connections get `channel.left` and lose access at once, on every instance; the others get `member.left` with `by`.",
  })
  @ApiResponse({ status: 204, description: 'removed' })
  @ApiError(403, `not a member of this public channel, not allowed to remove this member, yourself (leave instead), a DM, or ${ARCHIVED}`)
  remove(@CurrentUser() user: AuthUser, @UuidParam() id: string, @UuidParam('userId') userId: string): Promise<void> {
    return this.admin.remove(user, id, userId);
  }

  @Patch('members/:userId')
  @ApiOperation({ summary: "Change a member's role to admin or member (owner); members get `member.updated`" })
  @ApiOkResponse({ type: MemberView })
  @ApiError(403, `not a member of this public channel, not its owner, your own role, a DM, or ${ARCHIVED}`)
  setRole(@CurrentUser() user: AuthUser, @UuidParam() id: string, @UuidParam('userId') userId: string, @Body() dto: UpdateMemberDto): Promise<MemberView> {
    return this.admin.setRole(user, id, userId, dto.role);
  }

  @Post('hide')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Hide a DM from your conversation list until its next message',
    description: 'Your connections get `conversation.hidden`; the DM stays readable and comes back (in lists and `session.ready`) with its next message.',
  })
  @ApiResponse({ status: 204, description: 'hidden' })
  @ApiError(403, 'not a member of this public channel, or not a DM')
  hide(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<void> {
    return this.admin.hide(user, id);
  }
}
