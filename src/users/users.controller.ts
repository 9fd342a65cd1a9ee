import { applyDecorators, Body, Controller, Delete, Get, HttpCode, Patch, Post, Query } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import type { AuthUser } from '../auth/auth.service.js';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { BlocksService } from './blocks.service.js';
import { BlockView } from './dto/block.dto.js';
import { UserSearchQueryDto } from './dto/user-search.dto.js';
import { UpdateProfileDto } from './dto/profile.dto.js';
import { PublicProfile, toPublicProfile, toUserProfile, toUserRef, UserProfile, UserRef } from './user.mapper.js';
import { UsersService } from './users.service.js';

/** What POST and DELETE /users/:id/block answer besides success. */
const BlockErrors = () =>
  applyDecorators(
    ApiError(400, 'the id is not a UUID, or is your own'),
    ApiError(404, 'no such user'),
  );

@ApiTags('users')
@Authenticated()
@Controller('users')
export class UsersController {
  constructor(
    private readonly users: UsersService,
    private readonly blocks: BlocksService,
  ) {}

  @Get('me')
  @ApiOperation({ summary: 'The caller' })
  @ApiOkResponse({ type: UserProfile })
  async me(@CurrentUser() user: AuthUser): Promise<UserProfile> {
    return toUserProfile(await this.users.getCaller(user.id));
  }

  @Patch('me')
  @ApiOperation({
    summary: "Change the caller's profile",
    description: 'Only the fields given change; `null` clears `displayName` or `avatarUrl`; `metadata` replaces the stored object (`{}` clears it).',
  })
  @ApiOkResponse({ type: UserProfile })
  @ApiError(400, 'a field is invalid: displayName without a visible character or over 64 characters, avatarUrl not an http(s) URL, metadata not an object or over 4 KB')
  async updateMe(@CurrentUser() user: AuthUser, @Body() dto: UpdateProfileDto): Promise<UserProfile> {
    return toUserProfile(await this.users.updateProfile(user.id, dto));
  }

  @Get('me/blocks')
  @ApiOperation({ summary: 'The users the caller blocked, most recent first' })
  @ApiOkResponse({ type: BlockView, isArray: true })
  myBlocks(@CurrentUser() user: AuthUser): Promise<BlockView[]> {
    return this.blocks.list(user.id);
  }

  @Get()
  @ApiOperation({ summary: 'Find users to message (prefix of the username, case-insensitive)' })
  @ApiOkResponse({ type: UserRef, isArray: true })
  @ApiError(400)
  async search(@CurrentUser() user: AuthUser, @Query() q: UserSearchQueryDto): Promise<UserRef[]> {
    return (await this.users.search(q.query ?? '', user.id, q.limit)).map(toUserRef);
  }

  @Get(':id')
  @ApiOperation({
    summary: "A user's profile",
    description: 'Messages carry only `sender` {id, username}: clients fetch the profile of each sender they have not seen (and cache it) to show display names and avatars.',
  })
  @ApiOkResponse({ type: PublicProfile })
  @ApiError(400, 'the id is not a UUID')
  @ApiError(404, 'no such user')
  async profile(@UuidParam() id: string): Promise<PublicProfile> {
    return toPublicProfile(await this.users.getProfile(id));
  }

  @Post(':id/block')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Block a user (idempotent)',
    description:
      'From then on: no direct messages between the two (sending in your DM, or opening a new one, answers 403 ' +
      '`forbidden` to both), no presence either way (each sees the other offline), and channels the blocked user ' +
      'creates leave you out of their `members`. Shared channels keep working. Blocking again answers the first block.',
  })
  @ApiOkResponse({ type: BlockView, description: 'blocked (now or before)' })
  @BlockErrors()
  block(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<BlockView> {
    return this.blocks.block(user, id);
  }

  @Delete(':id/block')
  @HttpCode(204)
  @ApiOperation({ summary: 'Unblock a user (idempotent: 204 also when they were not blocked)' })
  @ApiNoContentResponse({ description: 'not blocked (any more)' })
  @BlockErrors()
  unblock(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<void> {
    return this.blocks.unblock(user, id);
  }
}
