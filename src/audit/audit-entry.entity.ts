import { Column, Entity, PrimaryColumn } from 'typeorm';
import { epochMs } from '../common/epoch-ms.transformer.js';

/**
 * One administrative action: a call of the server API (every one, with its answer's status), a
 * deactivation, and later the channel administration's role changes, removals and archives.
 * Ids are UUIDv7 (time-ordered): the newest-first page walks the primary key.
 */
@Entity('audit_log')
export class AuditEntry {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'bigint', transformer: epochMs })
  at!: number;

  /** Who: `apikey:<first 12 hex of the key's SHA-256>`, or `user:<id>`. Never a key. */
  @Column({ type: 'varchar', length: 128 })
  actor!: string;

  /** What, as a stable name: `user.upsert`, `user.deactivate`, `api.call`, ... */
  @Column({ type: 'varchar', length: 64 })
  action!: string;

  /** On what: `user:<external id>`, `channel:<id>`, a route, ... */
  @Column({ type: 'varchar', length: 256, nullable: true })
  target!: string | null;

  /** The HTTP status answered, for API calls. */
  @Column({ type: 'integer', nullable: true })
  status!: number | null;

  /** A small JSON object of particulars (never secrets, never message text). */
  @Column({ type: 'text', nullable: true })
  details!: string | null;
}
