import { Column, Entity, PrimaryColumn } from 'typeorm';
import { epochMs } from '../common/epoch-ms.transformer.js';

@Entity('users')
export class User {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** As the user typed it; shown to others. */
  @Column({ type: 'varchar', length: 32 })
  username!: string;

  /** Lower-cased username: uniqueness and look-ups are case-insensitive on every database. */
  @Column({ name: 'username_key', type: 'varchar', length: 32, unique: true })
  usernameKey!: string;

  /** argon2id; never selected by default and never mapped into a response. */
  @Column({ name: 'password_hash', type: 'varchar', length: 255, select: false })
  passwordHash!: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  @Column({ name: 'last_seen_at', type: 'bigint', nullable: true, transformer: epochMs })
  lastSeenAt!: number | null;

  /** What clients show instead of the username when set. */
  @Column({ name: 'display_name', type: 'varchar', length: 64, nullable: true })
  displayName!: string | null;

  @Column({ name: 'avatar_url', type: 'varchar', length: 2048, nullable: true })
  avatarUrl!: string | null;

  /** The product's JSON object (at most 4 KB serialized), stored as its text; null: {}. */
  @Column({ type: 'text', nullable: true })
  metadata!: string | null;

  /** The product's id of this user (`sub` of its tokens, the key of the server API); unique. */
  @Column({ name: 'external_id', type: 'varchar', length: 128, nullable: true, unique: true })
  externalId!: string | null;

  /** Set by the server API: the user's tokens are refused and their sockets closed, everywhere. */
  @Column({ name: 'deactivated_at', type: 'bigint', nullable: true, transformer: epochMs })
  deactivatedAt!: number | null;
}
