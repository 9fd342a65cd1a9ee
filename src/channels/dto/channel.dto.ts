import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { ConversationView } from '../conversation.mapper.js';
import { IntField } from '../../common/int-field.decorator.js';

export const CHANNEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const CHANNEL_NAME_MESSAGE = 'name must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit';

export class CreateChannelDto {
  @ApiProperty({ example: 'general' })
  @IsString() @Matches(CHANNEL_NAME_PATTERN, { message: CHANNEL_NAME_MESSAGE })
  name!: string;

  @ApiProperty({ enum: ['public', 'private'], example: 'public' })
  @IsIn(['public', 'private'])
  visibility!: 'public' | 'private';

  @ApiPropertyOptional({ type: [String], example: ['bob', 'carol'], description: 'usernames added as members' })
  @IsOptional() @IsArray() @ArrayMaxSize(1000) @IsString({ each: true }) @MaxLength(32, { each: true })
  members?: string[];
}

export class JoinByNameDto {
  @ApiProperty({ example: 'general' })
  @IsString() @Matches(CHANNEL_NAME_PATTERN, { message: CHANNEL_NAME_MESSAGE })
  name!: string;
}

export class ChannelDirectoryQueryDto {
  @ApiPropertyOptional({ example: 'gen', description: 'part of the channel name, case-insensitive' })
  @IsOptional() @IsString() @MaxLength(64)
  query?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional() @IntField({ min: 1, max: 200, query: true })
  limit: number = 50;
}

export class ChannelSummary {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['dm', 'channel'] }) kind!: 'dm' | 'channel';
  @ApiProperty({ example: 'general' }) name!: string;
  @ApiProperty({ enum: ['public', 'private'] }) visibility!: 'public' | 'private';
  @ApiProperty({ example: 12 }) memberCount!: number;
  @ApiProperty({ example: '2026-11-22T10:00:00.000Z' }) createdAt!: string;
  @ApiProperty({ description: 'whether the caller is a member' }) @IsBoolean() joined!: boolean;
}

export class CreateDmDto {
  @ApiProperty({ example: 'bob' })
  @IsString() @MaxLength(32)
  username!: string;
}

export class JoinResult {
  @ApiProperty({ type: ConversationView }) conversation!: ConversationView;
  @ApiProperty({ description: 'false when the caller was already a member' }) joined!: boolean;
}
