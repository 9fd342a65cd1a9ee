import { Type } from 'class-transformer';
import {
  IsInt, IsObject, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min, ValidateIf,
} from 'class-validator';
import { CHANNEL_NAME_PATTERN } from '../../channels/dto/channel.dto.js';
import { MessageBodyDto } from '../../messages/dto/message.dto.js';

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
  @IsInt() @Min(0)
  seq!: number;
}

export class SyncFrameDto extends FrameDto {
  /** channelId → last seq the client has. */
  @IsObject()
  channels!: Record<string, number>;
}

export class HistoryFrameDto extends ChannelFrameDto {
  @IsOptional() @IsInt() @Min(1)
  beforeSeq?: number;

  @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(200)
  limit: number = 50;
}
