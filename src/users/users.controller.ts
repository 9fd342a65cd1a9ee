import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import type { AuthUser } from '../auth/auth.service.js';
import { UserSearchQueryDto } from './dto/user-search.dto.js';
import { toUserProfile, toUserRef, UserProfile, UserRef } from './user.mapper.js';
import { UsersService } from './users.service.js';

@ApiTags('users')
@Authenticated()
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get('me')
  @ApiOperation({ summary: 'The caller' })
  @ApiOkResponse({ type: UserProfile })
  async me(@CurrentUser() user: AuthUser): Promise<UserProfile> {
    return toUserProfile(await this.users.getCaller(user.id));
  }

  @Get()
  @ApiOperation({ summary: 'Find users to message (prefix of the username, case-insensitive)' })
  @ApiOkResponse({ type: UserRef, isArray: true })
  async search(@CurrentUser() user: AuthUser, @Query() q: UserSearchQueryDto): Promise<UserRef[]> {
    return (await this.users.search(q.query ?? '', user.id, q.limit)).map(toUserRef);
  }
}
