import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, Unique, type Relation } from 'typeorm';
import { Channel } from '../channels/channel.entity.js';
import { User } from '../users/user.entity.js';
import { epochMs } from '../common/epoch-ms.transformer.js';

@Entity('messages')
// History reads walk this index by (channel_id, seq); it is also the gap/repeat guard.
@Unique('uq_messages_channel_seq', ['channelId', 'seq'])
// The sender's idempotency key: a retry finds the original instead of inserting again.
@Unique('uq_messages_sender_client_msg', ['senderId', 'clientMsgId'])
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
}
