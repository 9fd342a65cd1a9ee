import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { User } from '../users/user.entity.js';
import { Channel } from './channel.entity.js';
import { epochMs } from '../common/epoch-ms.transformer.js';

export type MemberRole = 'owner' | 'admin' | 'member';

@Entity('memberships')
@Index('idx_memberships_user', ['userId'])
export class Membership {
  @PrimaryColumn({ name: 'channel_id', type: 'varchar', length: 36 })
  channelId!: string;

  @PrimaryColumn({ name: 'user_id', type: 'varchar', length: 36 })
  userId!: string;

  @Column({ type: 'varchar', length: 16, default: 'member' })
  role!: MemberRole;

  /**
   * Forward-only read marker. Sending moves it to the sent message, so every message of the
   * reader's own is at or below it and unreadCount is exactly headSeq - lastReadSeq.
   */
  @Column({ name: 'last_read_seq', type: 'integer', default: 0 })
  lastReadSeq!: number;

  @ManyToOne(() => Channel, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'channel_id' })
  channel?: Relation<Channel>;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: Relation<User>;

  @Column({ name: 'joined_at', type: 'bigint', transformer: epochMs })
  joinedAt!: number;

  /**
   * When the user accepted the conversation; null while it is a request: a DM someone opened with
   * them, a channel someone added them to. Creators and joiners accept at once. No presence flows
   * through a conversation until both sides have accepted it.
   */
  @Column({ name: 'accepted_at', type: 'bigint', nullable: true, transformer: epochMs })
  acceptedAt!: number | null;

  /** Since when the member muted the channel (no notification.needed for it); null: not muted. */
  @Column({ name: 'muted_at', type: 'bigint', nullable: true, transformer: epochMs })
  mutedAt!: number | null;

  /**
   * DMs only: the head when this member hid the DM (`POST /channels/:id/hide`); null when shown.
   * It is hidden while the head stays there, so its next message brings it back with no write.
   */
  @Column({ name: 'hidden_seq', type: 'integer', nullable: true })
  hiddenSeq!: number | null;
}
