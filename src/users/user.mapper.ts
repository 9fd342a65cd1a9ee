import { ApiProperty } from '@nestjs/swagger';
import type { User } from './user.entity.js';

/** The public face of a user: what other users may see. */
export class UserRef {
  @ApiProperty({ format: 'uuid', example: '7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11' })
  id!: string;

  @ApiProperty({ example: 'alice' })
  username!: string;
}

export class UserProfile extends UserRef {
  @ApiProperty({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-11-22T10:05:00.000Z', description: 'null until the first connection ends' })
  lastSeenAt!: string | null;
}

export const toUserRef = (u: { id: string; username: string }): UserRef => ({ id: u.id, username: u.username });

export const toUserProfile = (u: User): UserProfile => ({
  id: u.id,
  username: u.username,
  createdAt: new Date(u.createdAt).toISOString(),
  lastSeenAt: u.lastSeenAt === null ? null : new Date(u.lastSeenAt).toISOString(),
});
