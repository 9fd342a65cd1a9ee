import { ApiProperty } from '@nestjs/swagger';
import { StringField } from '../../common/string-field.decorator.js';

export class RefreshDto {
  // Any wrong string is a wrong token (401); only a size no token has is a bad payload.
  @ApiProperty({ description: 'the `refreshToken` of the latest login or refresh' })
  @StringField({ max: 4096 })
  refreshToken!: string;
}

export class ChangePasswordDto {
  @ApiProperty({ example: 'correct horse battery staple' })
  @StringField({ max: 1024 })
  currentPassword!: string;

  @ApiProperty({ example: 'battery staple correct horse' })
  @StringField({ min: 8, max: 256 })
  newPassword!: string;
}

/** One of the caller's live sessions (a login on some device). */
export class SessionView {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-22T11:00:00.000Z', description: 'the login or the latest refresh' })
  lastUsedAt!: string;

  @ApiProperty({ type: String, nullable: true, example: 'Mozilla/5.0 …', description: 'User-Agent of the latest login or refresh' })
  userAgent!: string | null;

  @ApiProperty({ type: String, nullable: true, example: '203.0.113.7', description: 'client address of the latest login or refresh' })
  ip!: string | null;

  @ApiProperty({ description: 'the session of the token that asks' })
  current!: boolean;
}

export class WsTicketDto {
  @ApiProperty({ description: 'for `/ws?ticket=`: one handshake, on any instance, within expiresIn seconds' })
  ticket!: string;

  @ApiProperty({ type: 'integer', example: 30, description: 'seconds the ticket stays valid' })
  expiresIn!: number;
}
