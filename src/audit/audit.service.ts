import { Injectable } from '@nestjs/common';
import { uuid7 } from '../common/uuid7.js';
import { DataSource, EntityManager } from 'typeorm';
import { DatabaseWriter } from '../database/database-writer.js';
import { AuditEntry } from './audit-entry.entity.js';
import type { AuditEntryView, AuditPage } from './dto/audit.dto.js';

/** What happened, by whom, on what. */
export interface AuditRecord {
  actor: string;
  action: string;
  target?: string | null;
  status?: number | null;
  details?: Record<string, unknown> | null;
}

/**
 * The audit log of administrative actions. `record(entry, em)` writes inside the caller's
 * transaction, so an action and its entry commit together (or neither does); without `em` the
 * entry is a transaction of its own (the log of a call, written after it was answered).
 */
@Injectable()
export class AuditService {
  constructor(
    private readonly db: DataSource,
    private readonly writer: DatabaseWriter,
  ) {}

  async record(entry: AuditRecord, em?: EntityManager): Promise<void> {
    const row = Object.assign(new AuditEntry(), {
      id: uuid7(),
      at: Date.now(),
      actor: entry.actor.slice(0, 128),
      action: entry.action.slice(0, 64),
      target: entry.target ? entry.target.slice(0, 256) : null,
      status: entry.status ?? null,
      details: entry.details ? JSON.stringify(entry.details) : null,
    });
    if (em) await em.insert(AuditEntry, row);
    else await this.writer.transaction((tx) => tx.insert(AuditEntry, row));
  }

  /** Newest first, `limit` per page; `cursor` is the previous page's nextCursor (an entry id). */
  async page(cursor: string | undefined, limit: number): Promise<AuditPage> {
    const q = this.db.getRepository(AuditEntry).createQueryBuilder('a').orderBy('a.id', 'DESC').limit(limit + 1);
    if (cursor) q.where('a.id < :cursor', { cursor: cursor.toLowerCase() });
    const rows = await q.getMany();
    const entries = rows.slice(0, limit).map(toView);
    return { entries, nextCursor: rows.length > limit ? entries[entries.length - 1].id : null };
  }
}

function toView(a: AuditEntry): AuditEntryView {
  let details: Record<string, unknown> | null;
  try {
    details = a.details ? (JSON.parse(a.details) as Record<string, unknown>) : null;
  } catch {
    details = null;
  }
  return { id: a.id, at: new Date(a.at).toISOString(), actor: a.actor, action: a.action, target: a.target, status: a.status, details };
}
