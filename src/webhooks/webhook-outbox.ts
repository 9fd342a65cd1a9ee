import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { OutboxRow, toOutboxRow, WebhookEvent, WebhookEventType } from './webhook-events.js';
import { outboxInsertStatements, outboxLockStatement } from './webhook-outbox-sql.js';

// The append statements live in a plain module: the SQLite writer thread runs them too.
export { outboxInsertStatements, outboxLockStatement };

/** A claimed row, as the delivery worker sees it. */
export interface ClaimedEvent {
  id: number;
  eventId: string;
  type: WebhookEventType;
  key: string;
  body: string;
  createdAt: number;
  attempts: number;
}

interface ClaimedRow {
  id: number | string;
  event_id: string;
  type: WebhookEventType;
  ordering_key: string;
  body: string;
  created_at: number | string;
  attempts: number | string;
}

/**
 * The transactional outbox of webhook events: `webhook_outbox`, one row per event, written in the
 * transaction of the change it describes, so an event exists exactly when its change committed
 * (a crash right after the commit loses none; a rolled-back change sends none). Rows are deleted
 * once delivered, so the table is the backlog. All its SQL is here and in webhook-outbox-sql.ts (the appends).
 *
 * With WEBHOOK_URL unset every append is a no-op (no rows, no statements): the send path pays
 * nothing for webhooks nobody asked for.
 *
 * Order: events of a key (a channel) are delivered in `id` order. On SQLite ids follow commit
 * order (one writer). On PostgreSQL a sequence value is taken at INSERT, not at COMMIT, so two
 * transactions could commit a key's ids out of order and the worker could deliver 6 before 5
 * appears; each append therefore first takes a transaction-scoped advisory lock per key (sorted,
 * so two appends cannot deadlock), which makes appends of one key commit one after another.
 * Append last in a transaction, so the lock is held for the commit only.
 */
@Injectable()
export class WebhookOutbox {
  readonly enabled: boolean;
  private readonly postgres: boolean;
  /** Called after an append (the delivery worker looks soon; on PostgreSQL the commit may still be on its way). */
  onAppended: () => void = () => undefined;

  constructor(
    config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly writer: DatabaseWriter,
  ) {
    this.enabled = config.webhooks !== null;
    this.postgres = writer.dialect === 'postgres';
  }

  /**
   * THE API for TypeORM write paths: call it inside the transaction of the change, last, e.g.
   * `await this.outbox.append(em, [webhookEvents.memberJoined(channelId, user)])`.
   */
  async append(em: EntityManager, events: WebhookEvent[]): Promise<void> {
    const rows = this.rows(events);
    if (rows.length === 0) return;
    const qr = em.queryRunner!;
    if (this.postgres) {
      const lock = outboxLockStatement(rows);
      await qr.query(lock.sql, lock.params);
    }
    for (const stmt of outboxInsertStatements(rows, this.postgres ? 'postgres' : 'sqlite')) await qr.query(stmt.sql, stmt.params);
  }

  /**
   * The rows of these events; empty when webhooks are off. (The message batch makes its own, as
   * plain code that also runs in the SQLite writer thread: see message-batch.ts; MessageWriter
   * calls onAppended after its commit.)
   */
  rows(events: WebhookEvent[]): OutboxRow[] {
    if (!this.enabled || events.length === 0) return [];
    const now = Date.now();
    const rows = events.map((e) => toOutboxRow(e, now));
    queueMicrotask(() => this.onAppended());
    return rows;
  }

  /**
   * Takes up to `limit` events to deliver, at most one per key: the oldest of its key, when it is
   * due and nobody holds it. A claim is a lease (`lease_until`) in the row itself, so exactly one
   * instance delivers an event: the UPDATE re-checks `lease_until` on the row it locks, so of two
   * instances claiming at once, one gets the row and the other nothing; PostgreSQL's SKIP LOCKED
   * makes the loser move on instead of waiting. The lease lives in the database, the truth, and
   * not in Redis: a Redis restart cannot let two instances deliver the same event, and the same
   * code serves SQLite. A lease outlives an attempt (timeout) by far; when its instance dies, the
   * lease runs out and another instance delivers the event again (at least once, same id).
   */
  async claim(instanceId: string, limit: number, leaseMs: number): Promise<ClaimedEvent[]> {
    const now = Date.now();
    // Each key's oldest row, found by walking the distinct keys down the (ordering_key, id) index
    // (a loose index scan), so the cost follows the number of channels with a backlog, not the
    // number of rows: a receiver down for hours leaves many rows behind few heads.
    const heads = `WITH RECURSIVE keys(k) AS (
        SELECT (SELECT MIN(ordering_key) FROM webhook_outbox)
        UNION ALL
        SELECT (SELECT MIN(ordering_key) FROM webhook_outbox WHERE ordering_key > keys.k) FROM keys WHERE keys.k IS NOT NULL
      ), heads(id) AS (
        SELECT (SELECT MIN(h.id) FROM webhook_outbox h WHERE h.ordering_key = keys.k) FROM keys WHERE keys.k IS NOT NULL
      )`;
    const due = `SELECT o.id FROM webhook_outbox o WHERE o.id IN (SELECT id FROM heads) AND o.next_attempt_at <= ? AND o.lease_until <= ? ORDER BY o.id LIMIT ?`;
    const sql = this.postgres
      ? `${heads}, picked AS (${due} FOR UPDATE SKIP LOCKED)
         UPDATE webhook_outbox w SET lease_until = ?, leased_by = ? FROM picked WHERE w.id = picked.id AND w.lease_until <= ?
         RETURNING w.id, w.event_id, w.type, w.ordering_key, w.body, w.created_at, w.attempts`
      : `${heads} UPDATE webhook_outbox SET lease_until = ?, leased_by = ? WHERE id IN (${due}) AND lease_until <= ?
         RETURNING id, event_id, type, ordering_key, body, created_at, attempts`;
    const params = this.postgres ? [now, now, limit, now + leaseMs, instanceId, now] : [now + leaseMs, instanceId, now, now, limit, now];
    const rows = await this.run<ClaimedRow>(sql, params);
    return rows
      .map((r) => ({ id: Number(r.id), eventId: r.event_id, type: r.type, key: r.ordering_key, body: r.body, createdAt: Number(r.created_at), attempts: Number(r.attempts) }))
      .sort((a, b) => a.id - b.id);
  }

  /** Whether the outbox holds anything (a read, so an idle poll takes no write slot). */
  async isEmpty(): Promise<boolean> {
    return (await this.read('SELECT 1 AS one FROM webhook_outbox LIMIT 1', [])).length === 0;
  }

  /** Delivered (or given up on): the row goes. Only by the lease's holder. */
  async remove(id: number, instanceId: string): Promise<void> {
    await this.run('DELETE FROM webhook_outbox WHERE id = ? AND leased_by = ?', [id, instanceId]);
  }

  /** A failed attempt: the next one at `at`; the lease is let go. */
  async retryAt(id: number, instanceId: string, at: number, error: string): Promise<void> {
    await this.run('UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?, lease_until = 0, leased_by = NULL, last_error = ? WHERE id = ? AND leased_by = ?', [
      at,
      error.slice(0, 200),
      id,
      instanceId,
    ]);
  }

  /** Shutdown: this instance's claims go back at once (not after the lease). */
  async release(instanceId: string): Promise<void> {
    await this.run('UPDATE webhook_outbox SET lease_until = 0, leased_by = NULL WHERE leased_by = ?', [instanceId]);
  }

  /** Undelivered events and the age of the oldest (for /metrics). */
  async backlog(): Promise<{ count: number; oldestAt: number | null }> {
    const [row] = await this.read<{ n: number | string; oldest: number | string | null }>('SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_outbox', []);
    return { count: Number(row?.n ?? 0), oldestAt: row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest) };
  }

  /** A write, through the DatabaseWriter (SQLite's one connection takes one transaction at a time). */
  private run<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.writer.transaction(async (em) => ((await em.queryRunner!.query(this.dialect(sql), params, true)).records ?? []) as T[]);
  }

  private async read<T>(sql: string, params: unknown[]): Promise<T[]> {
    return (await this.dataSource.query(this.dialect(sql), params)) as T[];
  }

  private dialect(sql: string): string {
    if (!this.postgres) return sql;
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  }
}
