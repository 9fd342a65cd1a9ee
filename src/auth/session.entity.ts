import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { epochMs } from '../common/epoch-ms.transformer.js';
import { User } from '../users/user.entity.js';

/**
 * One login: the refresh token that keeps it going, and whether it has ended. Access tokens name
 * their session (`sid`), so ending it ends them too, on every instance (see SessionRevocations).
 */
@Entity('sessions')
@Index('idx_sessions_user', ['userId'])
@Index('idx_sessions_revoked', ['revokedAt'])
export class Session {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'user_id', type: 'varchar', length: 36 })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: Relation<User>;

  /** SHA-256 (hex) of the current refresh token; a rotated one no longer matches. Never selected by default. */
  @Column({ name: 'refresh_hash', type: 'varchar', length: 64, select: false })
  refreshHash!: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  /** The login or the latest refresh (not every request: that would be a write per request). */
  @Column({ name: 'last_used_at', type: 'bigint', transformer: epochMs })
  lastUsedAt!: number;

  @Column({ name: 'user_agent', type: 'varchar', length: 256, nullable: true })
  userAgent!: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  ip!: string | null;

  @Column({ name: 'revoked_at', type: 'bigint', nullable: true, transformer: epochMs })
  revokedAt!: number | null;
}
