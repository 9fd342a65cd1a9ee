import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsString, Matches } from 'class-validator';
import { ApiNullableRef } from '../../common/api-nullable.decorator.js';
import { IntField } from '../../common/int-field.decorator.js';
import { Optional } from '../../common/optional.decorator.js';
import { StringField } from '../../common/string-field.decorator.js';
import { UUID_ALL, UUID_PATTERN } from '../../common/uuid.js';
import { UserRef } from '../../users/user.mapper.js';
import type { PresenceStatus } from '../conversation.mapper.js';
import type { MemberRole } from '../membership.entity.js';
import { CHANNEL_NAME_PATTERN } from './channel.dto.js';

export const MAX_TOPIC_LENGTH = 250;

/** `PATCH /channels/:id`: any of the three; none changes nothing. */
export class UpdateChannelDto {
  @ApiPropertyOptional({ example: 'general', pattern: CHANNEL_NAME_PATTERN.source })
  @Optional() @IsString() @Matches(CHANNEL_NAME_PATTERN, { message: 'name must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit' })
  name?: string;

  @ApiPropertyOptional({ maxLength: MAX_TOPIC_LENGTH, example: 'Release planning', description: '"" clears the topic' })
  @Optional() @StringField({ max: MAX_TOPIC_LENGTH })
  topic?: string;

  @ApiPropertyOptional({ enum: ['public', 'private'] })
  @Optional() @IsIn(['public', 'private'])
  visibility?: 'public' | 'private';
}

export class InviteMembersDto {
  @ApiProperty({ type: 'array', items: { type: 'string', maxLength: 32 }, minItems: 1, maxItems: 1000, example: ['carol'] })
  @IsArray() @ArrayMinSize(1) @ArrayMaxSize(1000) @StringField({ max: 32, each: true })
  usernames!: string[];
}

export class UpdateMemberDto {
  @ApiProperty({ enum: ['admin', 'member'], description: 'ownership is not transferable' })
  @IsIn(['admin', 'member'])
  role!: 'admin' | 'member';
}

export class MembersQueryDto {
  @ApiPropertyOptional({ description: 'the `nextCursor` of the previous page' })
  @Optional() @StringField({ min: 1, max: 200 })
  cursor?: string;

  @ApiPropertyOptional({ default: 50 })
  @Optional() @IntField({ min: 1, max: 200, query: true })
  limit: number = 50;
}

export class ConversationsQueryDto {
  @ApiPropertyOptional({ description: 'page size; without `limit` and `before` the whole list comes back (v1)' })
  @Optional() @IntField({ min: 1, max: 200, query: true })
  limit?: number;

  @ApiPropertyOptional({ format: 'uuid', pattern: UUID_PATTERN, description: 'the channelId of the last conversation of the previous page' })
  @Optional() @IsString() @Matches(UUID_ALL, { message: 'before must be a UUID' })
  before?: string;
}

export class ChannelDetails {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['dm', 'channel'] }) kind!: 'dm' | 'channel';
  @ApiProperty({ example: 'general', description: "channel name, or the peer's username for a DM" }) name!: string;
  @ApiProperty({ type: String, nullable: true, maxLength: MAX_TOPIC_LENGTH }) topic!: string | null;
  @ApiProperty({ enum: ['public', 'private'] }) visibility!: 'public' | 'private';
  @ApiProperty({ type: 'integer', minimum: 0, example: 12 }) memberCount!: number;
  @ApiNullableRef(UserRef, { description: 'who created the channel; null for DMs' }) createdBy!: UserRef | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ description: 'read-only: sends, joins, edits and changes are refused (403, `details.reason: archived`)' }) archived!: boolean;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) archivedAt!: string | null;
  @ApiProperty({ type: String, enum: ['owner', 'admin', 'member', null], nullable: true, description: "the caller's role; null when not a member (a public channel)" })
  role!: MemberRole | null;
}

export class MemberView {
  @ApiProperty({ type: UserRef }) user!: UserRef;
  @ApiProperty({ enum: ['owner', 'admin', 'member'] }) role!: MemberRole;
  @ApiProperty({
    enum: ['online', 'offline'],
    description: '`offline` too unless you both accepted this channel and neither blocked the other (presence flows only through accepted conversations)',
  })
  status!: PresenceStatus;
}

export class MembersPage {
  @ApiProperty({ type: MemberView, isArray: true, description: 'by username' }) members!: MemberView[];
  @ApiProperty({ type: String, nullable: true, description: 'give it as `cursor` for the next page; null on the last' }) nextCursor!: string | null;
}
