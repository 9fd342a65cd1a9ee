import { ApiProperty } from '@nestjs/swagger';
import type { User } from './user.entity.js';

/** The public face of a user: what other users may see. Messages carry only this (cheap) ref. */
export class UserRef {
  @ApiProperty({ format: 'uuid', example: '7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11' })
  id!: string;

  @ApiProperty({ example: 'alice' })
  username!: string;
}

/** A user's profile as anyone may fetch it (`GET /users/:id`): no presence, no external id. */
export class PublicProfile extends UserRef {
  @ApiProperty({ type: String, nullable: true, maxLength: 64, example: 'Alice Liddell', description: 'shown instead of the username when set' })
  displayName!: string | null;

  @ApiProperty({ type: String, nullable: true, maxLength: 2048, example: 'https://cdn.example.com/a/alice.png' })
  avatarUrl!: string | null;

  @ApiProperty({ type: 'object', additionalProperties: true, example: { team: 'design' }, description: "the product's JSON object (at most 4 KB); {} when unset" })
  metadata!: Record<string, unknown>;

  @ApiProperty({ description: 'true once deactivated by the server API: the user can no longer connect' })
  deactivated!: boolean;
}

/** The caller's own profile (`GET /users/me`). */
export class UserProfile extends PublicProfile {
  @ApiProperty({ type: String, nullable: true, example: 'auth0|5f1e2d', description: "the product's id of this user, when it has one" })
  externalId!: string | null;

  @ApiProperty({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-11-22T10:05:00.000Z', description: 'null until the first connection ends' })
  lastSeenAt!: string | null;
}

export const toUserRef = (u: { id: string; username: string }): UserRef => ({ id: u.id, username: u.username });

/** The stored metadata text as an object; {} when unset (or, defensively, unreadable). */
export function parseMetadata(text: string | null): Record<string, unknown> {
  if (!text) return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export const toPublicProfile = (u: User): PublicProfile => ({
  id: u.id,
  username: u.username,
  displayName: u.displayName ?? null,
  avatarUrl: u.avatarUrl ?? null,
  metadata: parseMetadata(u.metadata ?? null),
  deactivated: u.deactivatedAt !== null && u.deactivatedAt !== undefined,
});

export const toUserProfile = (u: User): UserProfile => ({
  ...toPublicProfile(u),
  externalId: u.externalId ?? null,
  createdAt: new Date(u.createdAt).toISOString(),
  lastSeenAt: u.lastSeenAt === null ? null : new Date(u.lastSeenAt).toISOString(),
});
