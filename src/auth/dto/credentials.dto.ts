import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import { StringField } from '../../common/string-field.decorator.js';
import { UserRef } from '../../users/user.mapper.js';

export const USERNAME_PATTERN = /^[A-Za-z0-9_.-]{3,32}$/;

export class CredentialsDto {
  @ApiProperty({ example: 'alice', pattern: USERNAME_PATTERN.source, description: '3 to 32 letters, digits, `_`, `.` or `-`; case-insensitive' })
  @IsString()
  @Matches(USERNAME_PATTERN, { message: 'username must be 3 to 32 letters, digits, _ . or -' })
  username!: string;

  @ApiProperty({ example: 'correct horse battery staple' })
  @StringField({ min: 8, max: 256 })
  password!: string;
}

/**
 * Login takes any strings: a wrong password is a wrong password (401), whatever its length, so
 * the password policy never tells a guesser anything. Bounded all the same: no credential is
 * longer than this, and hashing a megabyte would be work done for an attacker.
 */
export class LoginDto {
  @ApiProperty({ example: 'alice' })
  @StringField({ max: 64 })
  username!: string;

  @ApiProperty({ example: 'correct horse battery staple' })
  @StringField({ max: 1024 })
  password!: string;
}

export class AuthResultDto {
  @ApiProperty({ type: UserRef })
  user!: UserRef;

  @ApiProperty({ description: 'JWT (HS256) for `Authorization: Bearer` and the WebSocket handshake; names its session (`sid`)' })
  accessToken!: string;

  @ApiProperty({
    example: '0b9c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11.Yq3v…',
    description: 'for `POST /auth/refresh`, once: each refresh answers a new one. Showing a used one again ends the session.',
  })
  refreshToken!: string;

  @ApiProperty({ type: 'integer', example: 3600, description: 'seconds until the access token expires' })
  expiresIn!: number;
}
