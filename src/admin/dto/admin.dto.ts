import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsString, Matches } from 'class-validator';
import { USERNAME_PATTERN } from '../../auth/dto/credentials.dto.js';
import { CHANNEL_NAME_PATTERN } from '../../channels/dto/channel.dto.js';
import { IntField } from '../../common/int-field.decorator.js';
import { Optional } from '../../common/optional.decorator.js';
import { StringField } from '../../common/string-field.decorator.js';
import { VISIBLE } from '../../common/text-hygiene.js';
import { MAX_TEXT_LENGTH } from '../../messages/dto/message.dto.js';
import { AvatarUrlField, DisplayNameField, MetadataField } from '../../users/dto/profile.dto.js';
import { EXTERNAL_ID_PATTERN } from '../../users/system-user.js';
import { UserRef } from '../../users/user.mapper.js';

const EXTERNAL_ID_MESSAGE = 'must be 1 to 128 letters, digits or . _ ~ : @ | + = -';
const externalIds = { type: 'array', items: { type: 'string', pattern: EXTERNAL_ID_PATTERN.source, minLength: 1, maxLength: 128 } } as const;

/** `PUT /admin/users/:externalId`: creates the user, or changes the profile fields given. */
export class UpsertUserDto {
  @ApiProperty({ example: 'alice', pattern: USERNAME_PATTERN.source, description: 'taken at creation; a different one later answers 409 (usernames never change)' })
  @IsString() @Matches(USERNAME_PATTERN, { message: 'username must be 3 to 32 letters, digits, _ . or -' })
  username!: string;

  @DisplayNameField() displayName?: string | null;
  @AvatarUrlField() avatarUrl?: string | null;
  @MetadataField() metadata?: Record<string, unknown>;
}

export class MintTokenDto {
  @ApiPropertyOptional({ example: 900, description: 'seconds the token lives; default and most JWT_TTL (a longer ask is cut to it)' })
  @Optional() @IntField({ min: 1, max: 31_536_000 })
  ttl?: number;
}

export class CreateAdminChannelDto {
  @ApiProperty({ example: 'project-42', pattern: CHANNEL_NAME_PATTERN.source })
  @IsString() @Matches(CHANNEL_NAME_PATTERN, { message: 'name must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit' })
  name!: string;

  @ApiProperty({ enum: ['public', 'private'], example: 'private' })
  @IsIn(['public', 'private'])
  visibility!: 'public' | 'private';

  @ApiPropertyOptional({ ...externalIds, maxItems: 1000, example: ['auth0|5f1e2d'], description: 'external ids of the members (each must exist: PUT /admin/users first)' })
  @Optional() @IsArray() @ArrayMaxSize(1000) @StringField({ max: 128, each: true, pattern: EXTERNAL_ID_PATTERN, patternMessage: `each external id ${EXTERNAL_ID_MESSAGE}` })
  members?: string[];
}

export class AddMembersDto {
  @ApiProperty({ ...externalIds, minItems: 1, maxItems: 1000, example: ['auth0|5f1e2d'] })
  @IsArray() @ArrayMinSize(1) @ArrayMaxSize(1000) @StringField({ max: 128, each: true, pattern: EXTERNAL_ID_PATTERN, patternMessage: `each external id ${EXTERNAL_ID_MESSAGE}` })
  externalIds!: string[];
}

export class AdminMessageDto {
  @ApiProperty({ example: 'Alice joined the project', description: 'at least one visible character' })
  @StringField({ min: 1, max: MAX_TEXT_LENGTH, pattern: VISIBLE, patternMessage: 'text must have a visible character' })
  text!: string;

  @ApiPropertyOptional({ example: 'auth0|5f1e2d', pattern: EXTERNAL_ID_PATTERN.source, description: 'post as this user (a member); left out: a system message (`kind: "system"`, `sender: null`)' })
  @Optional() @StringField({ min: 1, max: 128, pattern: EXTERNAL_ID_PATTERN, patternMessage: `as ${EXTERNAL_ID_MESSAGE}` })
  as?: string;

  @ApiPropertyOptional({ example: 'welcome-42', description: 'idempotency key (per sender; system messages share one sender); made up when left out' })
  @Optional() @StringField({ min: 1, max: 64 })
  clientMsgId?: string;
}

export class AdminUserView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'auth0|5f1e2d' }) externalId!: string;
  @ApiProperty({ example: 'alice' }) username!: string;
  @ApiProperty({ type: String, nullable: true, example: 'Alice Liddell' }) displayName!: string | null;
  @ApiProperty({ type: String, nullable: true, example: 'https://cdn.example.com/a/alice.png' }) avatarUrl!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, example: { plan: 'pro' } }) metadata!: Record<string, unknown>;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'set once deactivated' }) deactivatedAt!: string | null;
}

export class TokenView {
  @ApiProperty({ description: "the user's access token (HS256 JWT with its own session): for `Authorization: Bearer`, `?token=` or POST /auth/ws-ticket" })
  accessToken!: string;

  @ApiProperty({ type: 'integer', example: 900, description: 'seconds until it expires' })
  expiresIn!: number;
}

export class AdminChannelView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'project-42' }) name!: string;
  @ApiProperty({ enum: ['public', 'private'] }) visibility!: 'public' | 'private';
  @ApiProperty({ type: 'integer', minimum: 0, example: 3 }) memberCount!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
}

export class AddMembersResult {
  @ApiProperty({ format: 'uuid' }) channelId!: string;
  @ApiProperty({ type: [UserRef], description: 'the users added now (those already members are left out)' }) added!: UserRef[];
}
