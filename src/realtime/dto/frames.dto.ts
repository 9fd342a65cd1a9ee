import { IsObject, IsString, IsUUID, Matches, ValidateIf } from 'class-validator';
import { CHANNEL_NAME_PATTERN } from '../../channels/dto/channel.dto.js';
import { VISIBLE } from '../../common/text-hygiene.js';
import { useCompiledValidator } from '../../common/validation.js';
import { EMOJI_MAX_LENGTH, EMOJI_PATTERN, MAX_TEXT_LENGTH, MessageBodyDto } from '../../messages/dto/message.dto.js';
import { Optional } from '../../common/optional.decorator.js';
import { IntField, SeqField } from '../../common/int-field.decorator.js';
import { StringField } from '../../common/string-field.decorator.js';

/** Every client frame may carry `ref`; the answer to the frame echoes it. */
export class FrameDto {
  @Optional() @StringField({ max: 64 })
  ref?: string;
}

export class SendFrameDto extends MessageBodyDto {
  @Optional() @StringField({ max: 64 })
  ref?: string;

  @ValidateIf((o: SendFrameDto) => o.to === undefined || o.channelId !== undefined)
  @IsUUID('all', { message: 'channelId must be a UUID (or give `to`)' })
  channelId?: string;

  @ValidateIf((o: SendFrameDto) => o.channelId === undefined || o.to !== undefined)
  @StringField({ max: 32 })
  to?: string;
}

export class JoinFrameDto extends FrameDto {
  @ValidateIf((o: JoinFrameDto) => o.channelId === undefined || o.name !== undefined)
  @IsString() @Matches(CHANNEL_NAME_PATTERN, { message: 'name must be a channel name (or give channelId)' })
  name?: string;

  @ValidateIf((o: JoinFrameDto) => o.name === undefined || o.channelId !== undefined)
  @IsUUID('all', { message: 'channelId must be a UUID (or give name)' })
  channelId?: string;
}

export class ChannelFrameDto extends FrameDto {
  @IsUUID('all')
  channelId!: string;
}

export class ReadFrameDto extends ChannelFrameDto {
  @SeqField({ min: 0 })
  seq!: number;
}

export class SyncFrameDto extends FrameDto {
  /** channelId → the last seq the client has, or {seq, rev} (v1.1: changes since rev too). */
  @IsObject()
  channels!: Record<string, number | { seq: number; rev?: number }>;

  /** Messages (and changes) per sync.result page. */
  @Optional() @IntField({ min: 1, max: 200 })
  limit: number = 200;
}

/** message.edit, message.delete, reaction.add, reaction.remove: one message of a channel. */
export class ChangeFrameDto extends ChannelFrameDto {
  @SeqField({ min: 1 })
  seq!: number;

  text?: string;
  emoji?: string;
}

export class EditFrameDto extends ChangeFrameDto {
  @StringField({ min: 1, max: MAX_TEXT_LENGTH, pattern: VISIBLE, patternMessage: 'text must have a visible character' })
  declare text: string;
}

export class ReactionFrameDto extends ChangeFrameDto {
  @StringField({ min: 1, max: EMOJI_MAX_LENGTH, pattern: EMOJI_PATTERN, patternMessage: 'emoji must be one emoji or a :short_name:' })
  declare emoji: string;
}

export class HistoryFrameDto extends ChannelFrameDto {
  @Optional() @SeqField({ min: 1 })
  beforeSeq?: number;

  @Optional() @IntField({ min: 1, max: 200 })
  limit: number = 50;
}

/**
 * Every frame's payload is checked by its DTO's compiled validator first (the decorators, read
 * once: see fast-validator.ts); the decorators' own path answers whatever that does not accept.
 */
useCompiledValidator(
  FrameDto, SendFrameDto, JoinFrameDto, ChannelFrameDto, ReadFrameDto, SyncFrameDto, ChangeFrameDto, EditFrameDto, ReactionFrameDto, HistoryFrameDto,
);
