import { Controller, Delete, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth.service.js';
import { Authenticated, CurrentUser } from '../auth/authenticated.decorator.js';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { MuteState } from './dto/mute.dto.js';
import { NotificationsService } from './notifications.service.js';

@ApiTags('channels')
@Authenticated()
@ApiError(400)
@Controller('channels/:id/mute')
export class MuteController {
  constructor(private readonly notifications: NotificationsService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Mute a channel or DM for yourself (idempotent)',
    description: 'No `notification.needed` webhook event (mobile push) is made for you in a muted conversation. Messages, unread counts and frames are unchanged.',
  })
  @ApiOkResponse({ type: MuteState })
  @ApiError(403, 'not a member of this public channel')
  @ApiError(404, 'no such channel (or a private one you are not in)')
  mute(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<MuteState> {
    return this.notifications.mute(user, id, true);
  }

  @Delete()
  @HttpCode(200)
  @ApiOperation({ summary: 'Unmute a channel or DM (idempotent)' })
  @ApiOkResponse({ type: MuteState })
  @ApiError(403, 'not a member of this public channel')
  @ApiError(404, 'no such channel (or a private one you are not in)')
  unmute(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<MuteState> {
    return this.notifications.mute(user, id, false);
  }
}
