import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { VISIBLE } from '../../common/text-hygiene.js';
import { MessageView } from '../message.mapper.js';
import { IntField } from '../../common/int-field.decorator.js';

export const MAX_TEXT_LENGTH = 4000;

/** Shared by HTTP and WebSocket sends. */
export class MessageBodyDto {
  @ApiProperty({ example: 'hello', minLength: 1, maxLength: MAX_TEXT_LENGTH })
  @IsString() @MinLength(1) @MaxLength(MAX_TEXT_LENGTH) @Matches(VISIBLE, { message: 'text must have a visible character' })
  text!: string;

  @ApiProperty({ example: 'c-6f1e2d', description: "the sender's idempotency key (1 to 64 characters)" })
  @IsString() @MinLength(1) @MaxLength(64)
  clientMsgId!: string;
}

export class HistoryQueryDto {
  @ApiPropertyOptional({ description: 'only messages with seq < before (page backwards)', example: 101 })
  @IsOptional() @IntField({ min: 1, query: true })
  before?: number;

  @ApiPropertyOptional({ description: 'only messages with seq > after (page forwards)', example: 0 })
  @IsOptional() @IntField({ min: 0, query: true })
  after?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional() @IntField({ min: 1, max: 200, query: true })
  limit: number = 50;
}

export class HistoryPage {
  @ApiProperty({ format: 'uuid' }) channelId!: string;
  @ApiProperty({ type: [MessageView], description: 'ascending seq' }) messages!: MessageView[];
  @ApiProperty({ description: 'more messages exist beyond this page in the direction of the cursor' }) hasMore!: boolean;
}

export class ReadMarkerDto {
  @ApiProperty({ example: 42, description: 'the last seq read; clamped to headSeq; markers never move back' })
  @IntField({ min: 0 })
  seq!: number;
}

export class SendResult {
  @ApiProperty({ type: MessageView }) message!: MessageView;
  @ApiProperty({ description: 'true when this clientMsgId was already stored: the original is returned' }) duplicate!: boolean;
}
