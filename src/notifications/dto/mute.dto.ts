import { ApiProperty } from '@nestjs/swagger';

/** A member's mute of a channel: no `notification.needed` for it while muted. */
export class MuteState {
  @ApiProperty({ format: 'uuid' }) channelId!: string;
  @ApiProperty({ description: 'true: muted (no notification.needed webhook events for this channel)' }) muted!: boolean;
}
