import type { OutboxRow } from './webhook-events.js';

/*
 * The outbox's append statements as plain functions (no Nest, no TypeORM), so the SQLite writer
 * thread (messages/sqlite-writer.worker.ts) can run them in the message batch's transaction;
 * WebhookOutbox uses them on the main thread.
 */

/** Rows per multi-row INSERT (6 parameters each). */
const CHUNK = 100;

/**
 * The multi-row INSERTs of these rows (a raw-SQL write path runs them in its transaction; see
 * WebhookOutbox.rows). `next_attempt_at` is the event's time: due at once.
 */
export function outboxInsertStatements(rows: OutboxRow[], dialect: 'sqlite' | 'postgres'): { sql: string; params: unknown[] }[] {
  const out: { sql: string; params: unknown[] }[] = [];
  for (let start = 0; start < rows.length; start += CHUNK) {
    const chunk = rows.slice(start, start + CHUNK);
    let n = 0;
    const p = () => (dialect === 'postgres' ? `$${++n}` : '?');
    const values = chunk.map(() => `(${p()}, ${p()}, ${p()}, ${p()}, ${p()}, ${p()})`).join(', ');
    out.push({
      sql: `INSERT INTO webhook_outbox (event_id, type, ordering_key, body, created_at, next_attempt_at) VALUES ${values}`,
      params: chunk.flatMap((r) => [r.eventId, r.type, r.key, r.body, r.createdAt, r.createdAt]),
    });
  }
  return out;
}

/**
 * PostgreSQL: the advisory locks that make one key's appends commit in id order (see
 * WebhookOutbox), taken in a fixed order so that two transactions cannot deadlock on them.
 */
export function outboxLockStatement(rows: OutboxRow[]): { sql: string; params: unknown[] } {
  const keys = [...new Set(rows.map((r) => r.key))];
  return {
    sql: `SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended('parley:outbox:' || k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS keys`,
    params: [keys],
  };
}
