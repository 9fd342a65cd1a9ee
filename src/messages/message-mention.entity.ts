import { Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * "This message mentions this user": what mentionCount counts. Keyed (channel, user, seq) so a
 * channel's load reads each member's unread mentions in one range scan; rewritten by an edit,
 * removed by a delete. The message's own `mentions` column holds the rendered list.
 */
@Entity('message_mentions')
@Index('idx_message_mentions_user', ['userId'])
export class MessageMention {
  @PrimaryColumn({ name: 'channel_id', type: 'varchar', length: 36 })
  channelId!: string;

  @PrimaryColumn({ name: 'user_id', type: 'varchar', length: 36 })
  userId!: string;

  @PrimaryColumn({ type: 'integer' })
  seq!: number;
}
