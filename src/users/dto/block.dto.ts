import { ApiProperty } from '@nestjs/swagger';
import { UserRef } from '../user.mapper.js';

/** One user the caller has blocked. */
export class BlockView {
  @ApiProperty({ type: UserRef }) user!: UserRef;
  @ApiProperty({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' }) blockedAt!: string;
}
