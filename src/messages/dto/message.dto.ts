import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsUUID } from 'class-validator';
import { VISIBLE } from '../../common/text-hygiene.js';
import { MessageView } from '../message.mapper.js';
import { Optional } from '../../common/optional.decorator.js';
import { IntField, SeqField } from '../../common/int-field.decorator.js';
import { StringField } from '../../common/string-field.decorator.js';

export const MAX_TEXT_LENGTH = 4000;

/** Shared by HTTP and WebSocket sends. */
export class MessageBodyDto {
  @ApiProperty({ example: 'hello', description: 'at least one visible character' })
  @StringField({ min: 1, max: MAX_TEXT_LENGTH, pattern: VISIBLE, patternMessage: 'text must have a visible character' })
  text!: string;

  @ApiProperty({ example: 'c-6f1e2d', description: "the sender's idempotency key" })
  @StringField({ min: 1, max: 64 })
  clientMsgId!: string;

  @ApiPropertyOptional({ example: 41, description: 'answer this message of the same channel (a quoted reply)' })
  @Optional() @SeqField({ min: 1 })
  replyToSeq?: number;
}

export class HistoryQueryDto {
  @ApiPropertyOptional({ description: 'only messages with seq < before (page backwards)', example: 101 })
  @Optional() @SeqField({ min: 1, query: true })
  before?: number;

  @ApiPropertyOptional({ description: 'only messages with seq > after (page forwards)', example: 0 })
  @Optional() @SeqField({ min: 0, query: true })
  after?: number;

  @ApiPropertyOptional({ default: 50 })
  @Optional() @IntField({ min: 1, max: 200, query: true })
  limit: number = 50;
}

export class HistoryPage {
  @ApiProperty({ format: 'uuid' }) channelId!: string;
  @ApiProperty({ type: [MessageView], description: 'ascending seq' }) messages!: MessageView[];
  @ApiProperty({ description: 'more messages exist beyond this page in the direction of the cursor' }) hasMore!: boolean;
}

export class ReadMarkerDto {
  @ApiProperty({ example: 42, description: 'the last seq read; clamped to headSeq; markers never move back' })
  @SeqField({ min: 0 })
  seq!: number;
}

export class SendResult {
  @ApiProperty({ type: MessageView }) message!: MessageView;
  @ApiProperty({ description: 'true when this clientMsgId was already stored: the original is returned' }) duplicate!: boolean;
}

/**
 * One emoji (a single pictograph with its variation selector, skin tone, ZWJ sequence or tag
 * sequence; a flag; a keycap) or a `:short_name:`. The same pattern is in the OpenAPI and AsyncAPI
 * documents, so a client can check an emoji before sending it, exactly as the server does.
 */
export const EMOJI_PATTERN =
  /^(?::[a-z0-9_+-]{1,32}:|\p{Regional_Indicator}{2}|[#*0-9]\uFE0F?\u20E3|\p{Extended_Pictographic}(?:\uFE0F|\p{Emoji_Modifier})?(?:\u200D\p{Extended_Pictographic}(?:\uFE0F|\p{Emoji_Modifier})?)*[\u{E0020}-\u{E007F}]*)$/u;
export const EMOJI_MAX_LENGTH = 32;

export class EditBodyDto {
  @ApiProperty({ example: 'hello, edited', description: 'the new text: at least one visible character' })
  @StringField({ min: 1, max: MAX_TEXT_LENGTH, pattern: VISIBLE, patternMessage: 'text must have a visible character' })
  text!: string;
}

export class MessageResult {
  @ApiProperty({ type: MessageView }) message!: MessageView;
}

export class SearchQueryDto {
  @ApiProperty({ example: 'lunch friday', description: 'words to find (letters and digits; each matches as a prefix, all must match); other characters separate words' })
  @StringField({ min: 1, max: 200 })
  q!: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'only this channel (one of yours)' })
  @Optional() @IsUUID('all')
  channelId?: string;

  @ApiPropertyOptional({ default: 20 })
  @Optional() @IntField({ min: 1, max: 100, query: true })
  limit: number = 20;

  @ApiPropertyOptional({ format: 'uuid', description: 'the nextCursor of the previous page (a message id: hits older than it)' })
  @Optional() @IsUUID('all', { message: 'before must be a nextCursor from a previous page' })
  before?: string;
}

export class SearchHit {
  @ApiProperty({ type: MessageView }) message!: MessageView;
}

export class SearchPage {
  @ApiProperty({ type: [SearchHit], description: 'newest first' }) hits!: SearchHit[];
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'pass as `before` for the next page; null on the last page' }) nextCursor!: string | null;
}
