import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { User } from '../users/user.entity.js';
import { epochMs } from '../common/epoch-ms.transformer.js';
import { Message } from './message.entity.js';

/**
 * One user's reaction with one emoji to one message: the primary key makes adding it twice a
 * no-op. The message row carries the rendered summary (see MessageWriter), so reads never join this.
 */
@Entity('reactions')
export class Reaction {
  @PrimaryColumn({ name: 'message_id', type: 'varchar', length: 36 })
  messageId!: string;

  @PrimaryColumn({ name: 'user_id', type: 'varchar', length: 36 })
  userId!: string;

  @PrimaryColumn({ type: 'varchar', length: 64 })
  emoji!: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  @ManyToOne(() => Message, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'message_id' })
  message?: Relation<Message>;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: Relation<User>;
}
