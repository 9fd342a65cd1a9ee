import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiNoContentResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiError } from '../common/api-error.decorator.js';
import { AuthService, type AuthSession } from './auth.service.js';
import { Authenticated, CurrentUser } from './authenticated.decorator.js';
import { ChangePasswordDto } from './dto/session.dto.js';

/** Under /users/me, where clients look for it; here because credentials are the auth module's. */
@ApiTags('users')
@Authenticated()
@Controller('users')
export class PasswordController {
  constructor(private readonly auth: AuthService) {}

  @Post('me/password')
  @HttpCode(204)
  @ApiOperation({ summary: 'Change the password; every other session of the user ends (its sockets close with 1008)' })
  @ApiNoContentResponse({ description: 'changed' })
  @ApiError(400, 'the new password is 8 to 256 characters')
  @ApiError(401, 'wrong current password, or a missing, invalid or expired token')
  change(@CurrentUser() caller: AuthSession, @Body() dto: ChangePasswordDto): Promise<void> {
    return this.auth.changePassword(caller, dto.currentPassword, dto.newPassword);
  }
}
