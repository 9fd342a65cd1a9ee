import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { UserRef } from '../../users/user.mapper.js';

export class CredentialsDto {
  @ApiProperty({ example: 'alice', description: '3 to 32 letters, digits, `_`, `.` or `-`; case-insensitive' })
  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{3,32}$/, { message: 'username must be 3 to 32 letters, digits, _ . or -' })
  username!: string;

  @ApiProperty({ example: 'correct horse battery staple', minLength: 8, maxLength: 256 })
  @IsString()
  @MinLength(8)
  @MaxLength(256)
  password!: string;
}

export class AuthResultDto {
  @ApiProperty({ type: UserRef })
  user!: UserRef;

  @ApiProperty({ description: 'JWT (HS256) for `Authorization: Bearer` and the WebSocket handshake' })
  accessToken!: string;

  @ApiProperty({ example: 3600, description: 'seconds until the token expires' })
  expiresIn!: number;
}
