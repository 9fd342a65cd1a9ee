import { IsObject, IsOptional, IsString, IsUUID, Matches, MaxLength, ValidateIf } from 'class-validator';
import { CHANNEL_NAME_PATTERN } from '../../channels/dto/channel.dto.js';
import { VISIBLE } from '../../common/text-hygiene.js';
import { registerFastParser } from '../../common/validation.js';
import { MAX_TEXT_LENGTH, MessageBodyDto } from '../../messages/dto/message.dto.js';
import { IntField } from '../../common/int-field.decorator.js';

/** Every client frame may carry `ref`; the answer to the frame echoes it. */
export class FrameDto {
  @IsOptional() @IsString() @MaxLength(64)
  ref?: string;
}

export class SendFrameDto extends MessageBodyDto {
  @IsOptional() @IsString() @MaxLength(64)
  ref?: string;

  @ValidateIf((o: SendFrameDto) => o.to === undefined || o.channelId !== undefined)
  @IsUUID('all', { message: 'channelId must be a UUID (or give `to`)' })
  channelId?: string;

  @ValidateIf((o: SendFrameDto) => o.channelId === undefined || o.to !== undefined)
  @IsString() @MaxLength(32)
  to?: string;
}

const SEND_KEYS = new Set(['channelId', 'to', 'text', 'clientMsgId', 'ref']);
// class-validator's isUUID('all').
const UUID_ALL = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/i;
const str = (v: unknown, min: number, max: number): v is string => typeof v === 'string' && v.length >= min && v.length <= max;

/**
 * message.send is the hot frame: a plainly valid one skips class-transformer and
 * class-validator (a quarter of its cost); anything else takes the decorators' path.
 */
export function parseSendFrame(v: unknown): SendFrameDto | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return undefined;
  const o = v as Record<string, unknown>;
  for (const key in o) if (!SEND_KEYS.has(key)) return undefined;
  if (!str(o.text, 1, MAX_TEXT_LENGTH) || !VISIBLE.test(o.text) || !str(o.clientMsgId, 1, 64)) return undefined;
  if (o.ref !== undefined && !str(o.ref, 0, 64)) return undefined;
  const byChannel = o.channelId !== undefined;
  if (byChannel === (o.to !== undefined)) return undefined;
  if (byChannel ? !(typeof o.channelId === 'string' && UUID_ALL.test(o.channelId)) : !str(o.to, 0, 32)) return undefined;
  return Object.assign(new SendFrameDto(), o);
}
registerFastParser(SendFrameDto, parseSendFrame);

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
  @IntField({ min: 0 })
  seq!: number;
}

export class SyncFrameDto extends FrameDto {
  /** channelId → last seq the client has. */
  @IsObject()
  channels!: Record<string, number>;
}

export class HistoryFrameDto extends ChannelFrameDto {
  @IsOptional() @IntField({ min: 1 })
  beforeSeq?: number;

  @IsOptional() @IntField({ min: 1, max: 200 })
  limit: number = 50;
}
