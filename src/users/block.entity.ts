import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { epochMs } from '../common/epoch-ms.transformer.js';
import { User } from './user.entity.js';

/** `blocker` blocked `blocked`: no DMs between them, no presence either way, no invitations. */
@Entity('blocks')
@Index('idx_blocks_blocked', ['blockedId'])
export class Block {
  @PrimaryColumn({ name: 'blocker_id', type: 'varchar', length: 36 })
  blockerId!: string;

  @PrimaryColumn({ name: 'blocked_id', type: 'varchar', length: 36 })
  blockedId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'blocker_id' })
  blocker?: Relation<User>;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'blocked_id' })
  blocked?: Relation<User>;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;
}
