import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique, type Relation } from 'typeorm';
import { Channel } from '../channels/channel.entity.js';
import { User } from '../users/user.entity.js';
import { epochMs } from '../common/epoch-ms.transformer.js';

@Entity('messages')
// History reads walk this index by (channel_id, seq); it is also the gap/repeat guard.
@Unique('uq_messages_channel_seq', ['channelId', 'seq'])
// The sender's idempotency key: a retry finds the original instead of inserting again.
@Unique('uq_messages_sender_client_msg', ['senderId', 'clientMsgId'])
@Unique('uq_messages_channel_rev', ['channelId', 'rev'])
// A deleted message's replies, whose quotes it empties (partial: only replies have an entry).
@Index('idx_messages_reply_to', ['channelId', 'replyToSeq'], { where: '"reply_to_seq" IS NOT NULL' })
export class Message {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'channel_id', type: 'varchar', length: 36 })
  channelId!: string;

  @Column({ type: 'integer' })
  seq!: number;

  @Column({ name: 'sender_id', type: 'varchar', length: 36 })
  senderId!: string;

  @Column({ type: 'text' })
  text!: string;

  @Column({ name: 'client_msg_id', type: 'varchar', length: 64 })
  clientMsgId!: string;

  @ManyToOne(() => Channel, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'channel_id' })
  channel?: Relation<Channel>;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'sender_id' })
  sender?: Relation<User>;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  /** The channel's rev at this message's last change; unique per channel (the change order). */
  @Column({ type: 'integer', default: 0 })
  rev!: number;

  @Column({ name: 'edited_at', type: 'bigint', nullable: true, transformer: epochMs })
  editedAt!: number | null;

  /** Set once: a tombstone keeps its seq, its text is emptied. */
  @Column({ name: 'deleted_at', type: 'bigint', nullable: true, transformer: epochMs })
  deletedAt!: number | null;

  @Column({ name: 'reply_to_seq', type: 'integer', nullable: true })
  replyToSeq!: number | null;

  /** JSON of the wire `replyTo` snapshot; the rendered lists below are JSON too, null when empty. */
  @Column({ name: 'reply_to', type: 'text', nullable: true })
  replyTo!: string | null;

  @Column({ type: 'text', nullable: true })
  mentions!: string | null;

  /** The summary of the reactions table for this message, rewritten by each reaction change. */
  @Column({ type: 'text', nullable: true })
  reactions!: string | null;
}
