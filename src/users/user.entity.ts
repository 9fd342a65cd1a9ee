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
}
