import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import Database from 'better-sqlite3';
import { DataSource, EntityManager } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';
import { DatabaseWriter } from '../database/database-writer.js';
import type { OutboxRow } from '../webhooks/webhook-events.js';
import { outboxInsertStatements, outboxLockStatement } from '../webhooks/webhook-outbox-sql.js';
import { MESSAGE_COLUMNS, MessageRow, MessageView, rowToMessage } from './message.mapper.js';
import { BatchOptions, BatchStats, Heads, isChange, MessageBatchOps, pairKey, type ReadMarker, Request, writeSplitting } from './message-batch.js';
import { INSERT_CHUNK, insertParams, insertSql, REPLIES_SQL, SqliteOps, UPDATE_SQL, updateParams } from './sqlite-ops.js';
import { BatchResult, SqliteWriter } from './sqlite-writer.js';
import type { CrashPoint } from './writer-wire.js';

export { pairKey };
export type { Heads, MessageBatchOps };

/**
 * PostgreSQL: message batches in flight at once per instance, over disjoint channels (see
 * MessageWriter). Each holds a pooled connection (10 in all) while it runs.
 */
const PG_BATCHES_IN_FLIGHT = 2;

/** Messages per indexing transaction, and how long after a send the indexing runs. */
const INDEX_BATCH = 5000;
const INDEX_DELAY_MS = 1000;

/** Reads through a statement prepared once per SQL text (a handful of shapes). */
class SqliteReader {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  all<T>(sql: string, params: unknown[]): T[] {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt.all(params) as T[];
  }
}

/**
 * The messages' SQL: the reads (pages, changes, resume pages, search) and the write batch.
 *
 * Where the write batch runs (the batch itself: message-batch.ts):
 * - SQLite file: in the writer thread (SqliteWriter), which owns its own connection; one batch
 *   at a time, inside DatabaseWriter.exclusive, so the main connection's TypeORM write
 *   transactions never contend with it for the write lock.
 * - SQLite `:memory:`: a worker cannot share that database, so the batch runs on TypeORM's own
 *   connection, in the exclusive slot, with the same prepared statements (SqliteOps).
 * - PostgreSQL: the same batch through a TypeORM transaction on the pool (PostgresOps).
 *
 * Reads on an SQLite file go through a connection of their own, read-only: in WAL mode it sees
 * committed data only, never a batch half-way (the writer thread's open transaction, or, before
 * the thread, the shared connection's between two awaits).
 */
@Injectable()
export class MessageStore implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  /** SQLite reads: a read-only connection of their own (file), or TypeORM's connection (`:memory:`). */
  private readonly sqlite: SqliteReader | null = null;
  /** SQLite file: the writer thread. */
  private readonly thread: SqliteWriter | null = null;
  /** SQLite `:memory:`: the batch statements on TypeORM's connection. */
  private readonly local: SqliteOps | null = null;
  private readonly webhooks: boolean;
  private readonly logger = new Logger('MessageStore');
  private indexTimer: NodeJS.Timeout | null = null;
  /** Write transactions tried by message batches so far (the split test reads it). */
  transactions = 0;
  /**
   * How many batches MessageWriter may have here at once: SQLite has one writer (the thread, or
   * the one `:memory:` connection); PostgreSQL's pool runs several, each on its own connection.
   */
  readonly batchesInFlight: number;

  constructor(
    private readonly dataSource: DataSource,
    private readonly writer: DatabaseWriter,
    config: AppConfig,
  ) {
    this.webhooks = config.webhooks !== null;
    this.batchesInFlight = writer.dialect === 'sqlite' ? 1 : PG_BATCHES_IN_FLIGHT;
    if (writer.dialect !== 'sqlite') return;
    const main = (dataSource.driver as unknown as { databaseConnection: Database.Database }).databaseConnection;
    const file = config.database.type === 'sqlite' ? config.database.file : ':memory:';
    if (file === ':memory:') {
      this.local = new SqliteOps(main);
      this.sqlite = new SqliteReader(main);
    } else {
      this.thread = new SqliteWriter({ file, synchronous: config.sqliteSynchronous }, this.logger);
      this.sqlite = new SqliteReader(new Database(file, { readonly: true, timeout: 5000 }));
    }
  }

  onModuleInit(): void {
    this.thread?.start();
  }

  onApplicationBootstrap(): Promise<void> {
    return this.indexPending(); // what a crash left unindexed
  }

  /**
   * Shutdown, after the MessageWriter drained (its beforeApplicationShutdown): what is queued
   * for the database commits, then the writer thread and the read connection close.
   */
  async onApplicationShutdown(): Promise<void> {
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.indexTimer = null;
    await this.writer.drain();
    await this.thread?.close();
    if (this.thread && this.sqlite) this.sqlite.db.close();
  }

  /**
   * One group-commit batch: one transaction, split on failure down to the request at fault
   * (writeSplitting). Every failure comes back in its request's place as an AppError.
   *
   * A dead writer thread: whether it committed the batch before dying is unknown (it may have died
   * between its COMMIT and its reply), so the batch runs once more, on a new thread. What the first
   * run committed is found there (each send by its clientMsgId, each change already in place, a
   * delete with the quotes it emptied: BatchOptions.rerun) and counts as new, so the post-commit
   * hook fans it out and the senders get a plain ack: without this, messages on disk would have
   * been answered `internal` ("not applied") and never pushed to the members' connections. The
   * cost: a send in that batch that really was a repeat of an earlier one is acknowledged with
   * `duplicate: false`, and it, or a change already made before, is announced a second time,
   * which ChannelSequencer drops (its rev was delivered). A thread that dies on the second run
   * too fails the batch with `internal` (test/writer-crash.e2e-spec.ts).
   * A thread that stays alive but fails the request as a whole (an exception outside the batch's
   * transactions, which are caught per request) is treated the same: that too may come after a
   * COMMIT (building or sending the reply), so the rerun is not narrowed to a thread's exit.
   */
  async writeBatch(reqs: Request[]): Promise<BatchResult> {
    const opts = { webhooks: this.webhooks };
    const thread = this.thread;
    if (thread) {
      try {
        const result = await this.onThread(thread, reqs, opts);
        this.transactions += result.transactions;
        return result;
      } catch (err) {
        // The thread refused the batch as a whole: closed at shutdown (`unavailable`, retry on
        // another instance or after the restart) or dead twice (`internal`: retry with the same
        // clientMsgId; what the dead runs committed, if anything, is found then).
        const failed = (r: Request) =>
          err instanceof AppError ? err : new AppError('internal', isChange(r) ? 'the change could not be stored' : 'the message could not be stored');
        return { outcomes: reqs.map(failed), transactions: 0, appended: false };
      }
    }
    const stats: BatchStats = { transactions: 0, appended: false };
    const outcomes = await writeSplitting((work) => this.transaction(work), reqs, opts, this.logger, stats);
    this.transactions += stats.transactions;
    return { outcomes, ...stats };
  }

  /** The batch on the writer thread, and once more on a new one if that thread dies (see writeBatch). */
  private async onThread(thread: SqliteWriter, reqs: Request[], opts: BatchOptions): Promise<BatchResult> {
    const run = (o: BatchOptions) => this.writer.exclusive(() => thread.batch(reqs, o));
    try {
      return await run(opts);
    } catch (err) {
      if (err instanceof AppError) throw err; // refused as a whole (shutting down): not run
      this.logger.warn(`the writer thread died or failed with a batch of ${reqs.length} in flight (${(err as Error).message}); running it again`);
      return recovered(await run({ ...opts, rerun: true }));
    }
  }

  /** Test hook: the writer threads of the next batches die in their transactions (see SqliteWriter). */
  crashWriterOnNextBatches(...points: CrashPoint[]): void {
    if (!this.thread) throw new Error('no writer thread (SQLite file only)');
    this.thread.crashOnNextBatches(...points);
  }

  /**
   * A page of a channel's messages by seq cursor: forwards from `after`, otherwise backwards
   * from `before` (or the end); `limit + 1` rows, so the caller can tell whether there is more.
   */
  async page(channelId: string, q: { before?: number; after?: number; limit: number }): Promise<MessageRow[]> {
    const forwards = q.after !== undefined;
    const conds = ['m.channel_id = ?'];
    const params: unknown[] = [channelId];
    if (q.before !== undefined) {
      conds.push('m.seq < ?');
      params.push(q.before);
    }
    if (forwards) {
      conds.push('m.seq > ?');
      params.push(q.after);
    }
    params.push(q.limit + 1);
    const sql = `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
      WHERE ${conds.join(' AND ')} ORDER BY m.seq ${forwards ? 'ASC' : 'DESC'} LIMIT ?`;
    if (this.sqlite) return this.sqlite.all<MessageRow>(sql, params);
    let n = 0;
    return this.dataSource.query(sql.replace(/\?/g, () => `$${++n}`), params);
  }

  /** Current state of the messages changed after `afterRev` (any seq, or up to `maxSeq`), by rev; `limit + 1` rows. */
  async changes(channelId: string, q: { afterRev: number; maxSeq?: number; limit: number }): Promise<MessageRow[]> {
    const params: unknown[] = [channelId, q.afterRev];
    let cond = '';
    if (q.maxSeq !== undefined) {
      cond = ' AND m.seq <= ?';
      params.push(q.maxSeq);
    }
    params.push(q.limit + 1);
    const sql = `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
      WHERE m.channel_id = ? AND m.rev > ?${cond} ORDER BY m.rev ASC LIMIT ?`;
    if (this.sqlite) return this.sqlite.all<MessageRow>(sql, params);
    let n = 0;
    return this.dataSource.query(sql.replace(/\?/g, () => `$${++n}`), params);
  }

  /**
   * A resume page, read from one snapshot: the changes of messages up to `seq` after `rev` (by
   * rev), and the messages after `seq` (by seq), each `limit + 1` rows. One snapshot matters: a
   * client takes the highest rev it got as its next cursor, which is only safe if no change
   * slipped in between the two reads. SQLite file: both statements in one read transaction on
   * the read connection (outside a transaction each statement would be a snapshot of its own,
   * and the writer thread commits whenever it likes); `:memory:`: both run synchronously on the
   * one connection, so no write can come between them. PostgreSQL: a REPEATABLE READ transaction.
   */
  async resumePage(channelId: string, q: { seq: number; rev: number | null; limit: number }): Promise<{ changes: MessageRow[]; messages: MessageRow[] }> {
    const changesSql = `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
      WHERE m.channel_id = ? AND m.rev > ? AND m.seq <= ? ORDER BY m.rev ASC LIMIT ?`;
    const messagesSql = `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
      WHERE m.channel_id = ? AND m.seq > ? ORDER BY m.seq ASC LIMIT ?`;
    const changeParams = [channelId, q.rev, q.seq, q.limit + 1];
    const messageParams = [channelId, q.seq, q.limit + 1];
    if (this.sqlite) {
      const sqlite = this.sqlite;
      const read = () => ({
        changes: q.rev === null ? [] : sqlite.all<MessageRow>(changesSql, changeParams),
        messages: sqlite.all<MessageRow>(messagesSql, messageParams),
      });
      // The read connection has no other transaction, ever (BEGIN DEFERRED: a read snapshot).
      return this.thread ? sqlite.db.transaction(read)() : read();
    }
    const runner = this.dataSource.createQueryRunner('slave');
    try {
      await runner.connect();
      await runner.query('BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      let n = 0;
      const changes = q.rev === null ? [] : await runner.query(changesSql.replace(/\?/g, () => `$${++n}`), changeParams);
      n = 0;
      const messages = await runner.query(messagesSql.replace(/\?/g, () => `$${++n}`), messageParams);
      await runner.query('COMMIT');
      return { changes, messages };
    } catch (err) {
      await runner.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      await runner.release();
    }
  }

  /**
   * Full-text matches among the channels `userId` is a member of (joined in the query), newest
   * first, older than the cursor message; `limit + 1` rows. Terms are plain words (letters and
   * digits only, see MessagesService.search), each matched as a prefix.
   */
  async search(q: { userId: string; terms: string[]; channelId?: string; before?: string; limit: number }): Promise<MessageRow[]> {
    const params: unknown[] = [q.userId];
    const conds = ['m.deleted_at IS NULL'];
    let sql: string;
    let order: string;
    if (this.sqlite) {
      // Newest first by rowid, the insertion order: FTS5 walks its matches in that order and the
      // LIMIT stops it early, so a word in half the messages costs no more than a rare one.
      params.push(q.terms.map((t) => `"${t}"*`).join(' '));
      sql = `SELECT ${MESSAGE_COLUMNS} FROM messages_fts f JOIN messages m ON m.rowid = f.rowid JOIN users u ON u.id = m.sender_id
        JOIN memberships ms ON ms.channel_id = m.channel_id AND ms.user_id = ? WHERE messages_fts MATCH ?`;
      if (q.before !== undefined) {
        conds.push('f.rowid < (SELECT rowid FROM messages WHERE id = ?)');
        params.push(q.before);
      }
      order = 'f.rowid DESC';
    } else {
      // Newest first by id (time-ordered UUIDs); the GIN index finds the matches, a top-N sort picks the page.
      params.push(q.terms.map((t) => `'${t}':*`).join(' & '));
      sql = `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
        JOIN memberships ms ON ms.channel_id = m.channel_id AND ms.user_id = ? WHERE m.search @@ to_tsquery('simple', ?)`;
      if (q.before !== undefined) {
        conds.push('m.id < ?');
        params.push(q.before);
      }
      order = 'm.id DESC';
    }
    if (q.channelId !== undefined) {
      conds.push('m.channel_id = ?');
      params.push(q.channelId);
    }
    params.push(q.limit + 1);
    sql += ` AND ${conds.join(' AND ')} ORDER BY ${order} LIMIT ?`;
    if (this.sqlite) return this.sqlite.all<MessageRow>(sql, params);
    let n = 0;
    return this.dataSource.query(sql.replace(/\?/g, () => `$${++n}`), params);
  }

  /**
   * SQLite's search index: new messages go into FTS5 here, in batches, not in the send's own
   * transaction (one FTS insert per message in every small commit cost a lone sender a third of
   * its throughput). Runs a while after sends (`scheduleIndexing`) and before every search, so a
   * search still finds every message stored before it. PostgreSQL: nothing to do (a generated
   * column with a GIN index).
   */
  indexPending(): Promise<void> {
    const thread = this.thread;
    if (thread) return this.writer.exclusive(() => thread.index(INDEX_BATCH));
    const local = this.local;
    if (!local) return Promise.resolve();
    return this.writer.exclusive(async () => {
      for (let full = true; full; ) {
        local.db.exec('BEGIN IMMEDIATE');
        try {
          full = local.indexBatch(INDEX_BATCH);
          local.db.exec('COMMIT');
        } catch (err) {
          if (local.db.inTransaction) local.db.exec('ROLLBACK');
          throw err;
        }
      }
    });
  }

  /** Indexes new messages a little later, in one batch (SQLite; see indexPending). */
  scheduleIndexing(): void {
    if ((!this.thread && !this.local) || this.indexTimer) return;
    this.indexTimer = setTimeout(() => {
      this.indexTimer = null;
      this.indexPending().catch((err: Error) => this.logger.warn(`search indexing failed (retried after the next send): ${err.message}`));
    }, INDEX_DELAY_MS);
    this.indexTimer.unref();
  }

  /** A batch's transaction on the main thread (PostgreSQL, SQLite `:memory:`). */
  private transaction<T>(work: (ops: MessageBatchOps) => Promise<T>): Promise<T> {
    const local = this.local;
    if (!local) return this.writer.transaction((em) => work(new PostgresOps(em)));
    return this.writer.exclusive(async () => {
      local.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(local);
        local.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (local.db.inTransaction) local.db.exec('ROLLBACK');
        throw err;
      }
    });
  }
}

/** `list` in slices of INSERT_CHUNK: one statement each, far below PostgreSQL's bind limit. */
function* chunks<T>(list: T[]): Generator<T[]> {
  for (let start = 0; start < list.length; start += INSERT_CHUNK) yield list.slice(start, start + INSERT_CHUNK);
}

/** `($1::varchar, $2::int), ($3::varchar, $4::int), …`: `rows` tuples of these casts ('' for none). */
function valuesList(rows: number, casts: string[]): string {
  const k = casts.length;
  return Array.from({ length: rows }, (_, i) => `(${casts.map((cast, j) => `$${k * i + j + 1}${cast}`).join(', ')})`).join(', ');
}

class PostgresOps implements MessageBatchOps {
  constructor(private readonly em: EntityManager) {}

  private async rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    const result = await this.em.queryRunner!.query(sql, params, true);
    return (result.records ?? []) as T[];
  }

  async findExisting(pairs: { senderId: string; clientMsgId: string }[]): Promise<Map<string, MessageView>> {
    const found = new Map<string, MessageView>();
    for (const chunk of chunks(pairs)) {
      const rows = await this.rows<MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE (m.sender_id, m.client_msg_id) IN (VALUES ${valuesList(chunk.length, ['', ''])})`,
        chunk.flatMap((p) => [p.senderId, p.clientMsgId]),
      );
      for (const row of rows) found.set(pairKey(row.sender_id, row.client_msg_id), rowToMessage(row));
    }
    return found;
  }

  async findMembers(pairs: { channelId: string; userId: string }[]): Promise<Set<string>> {
    const unique = [...new Map(pairs.map((p) => [pairKey(p.channelId, p.userId), p])).values()];
    const found = new Set<string>();
    for (const chunk of chunks(unique)) {
      const rows = await this.rows<{ channel_id: string; user_id: string }>(
        `SELECT channel_id, user_id FROM memberships WHERE (channel_id, user_id) IN (VALUES ${valuesList(chunk.length, ['', ''])})`,
        chunk.flatMap((p) => [p.channelId, p.userId]),
      );
      for (const r of rows) found.add(pairKey(r.channel_id, r.user_id));
    }
    return found;
  }

  /**
   * One channel (a lone send, most batches at ordinary load): one statement, the bump itself.
   * Several (a busy instance's batch; 200 DM channels in the ingest benchmark): two statements
   * whatever their number, where one per channel cost a round trip each. The first locks every
   * row in id order, the order one statement per channel took them: PostgreSQL sorts before it
   * locks (the LockRows node sits above the Sort), and COLLATE "C" sorts as the caller's
   * `.sort()` did. The second bumps the rows it holds.
   */
  async takeHeads(channels: [channelId: string, n: number][]): Promise<Map<string, Heads>> {
    const taken = new Map<string, Heads>();
    if (channels.length === 1) {
      const [[channelId, n]] = channels;
      if (n > 0) {
        const [row] = await this.rows<{ head_seq: number; head_rev: number }>(
          'UPDATE channels SET head_seq = head_seq + $1, head_rev = head_rev + $1 WHERE id = $2 AND archived_at IS NULL RETURNING head_seq, head_rev',
          [n, channelId],
        );
        if (row) return taken.set(channelId, { headSeq: Number(row.head_seq), headRev: Number(row.head_rev) });
      }
    }
    const locked = await this.rows<{ id: string; head_seq: number; head_rev: number; archived_at: string | null }>(
      'SELECT id, head_seq, head_rev, archived_at FROM channels WHERE id = ANY($1::varchar[]) ORDER BY id COLLATE "C" FOR UPDATE',
      [channels.map(([channelId]) => channelId)],
    );
    for (const r of locked) taken.set(r.id, { headSeq: Number(r.head_seq), headRev: Number(r.head_rev), archived: r.archived_at !== null });
    const bumps = channels.filter(([channelId, n]) => n > 0 && taken.get(channelId)?.archived === false);
    for (const chunk of chunks(bumps)) {
      const bumped = await this.rows<{ id: string; head_seq: number; head_rev: number }>(
        `UPDATE channels c SET head_seq = c.head_seq + v.n, head_rev = c.head_rev + v.n
         FROM (VALUES ${valuesList(chunk.length, ['::varchar', '::int'])}) AS v(id, n) WHERE c.id = v.id RETURNING c.id, c.head_seq, c.head_rev`,
        chunk.flat(),
      );
      for (const r of bumped) taken.set(r.id, { headSeq: Number(r.head_seq), headRev: Number(r.head_rev) });
    }
    return taken;
  }

  async setHeadRev(channelId: string, rev: number): Promise<void> {
    await this.rows('UPDATE channels SET head_rev = $1 WHERE id = $2', [rev, channelId]);
  }

  async findMessage(channelId: string, seq: number): Promise<MessageView | null> {
    const rows = await this.rows<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.channel_id = $1 AND m.seq = $2`,
      [channelId, seq],
    );
    return rows.length ? rowToMessage(rows[0]) : null;
  }

  async repliesTo(channelId: string, seq: number): Promise<MessageView[]> {
    return (await this.rows<MessageRow>(REPLIES_SQL, [channelId, seq])).map(rowToMessage);
  }

  async roleOf(channelId: string, userId: string): Promise<string | null> {
    const rows = await this.rows<{ role: string }>('SELECT role FROM memberships WHERE channel_id = $1 AND user_id = $2', [channelId, userId]);
    return rows[0]?.role ?? null;
  }

  async update(m: MessageView, now: number): Promise<void> {
    await this.rows(UPDATE_SQL, updateParams(m, now));
  }

  async setMentions(channelId: string, seq: number, userIds: string[], replace: boolean): Promise<void> {
    if (replace) await this.rows('DELETE FROM message_mentions WHERE channel_id = $1 AND seq = $2', [channelId, seq]);
    if (userIds.length === 0) return;
    const values = userIds.map((_, i) => `($1, $2, $${i + 3})`).join(', ');
    await this.rows(`INSERT INTO message_mentions (channel_id, seq, user_id) VALUES ${values} ON CONFLICT DO NOTHING`, [channelId, seq, ...userIds]);
  }

  async addReaction(messageId: string, userId: string, emoji: string, now: number): Promise<boolean> {
    const rows = await this.rows(
      'INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1 AS added',
      [messageId, userId, emoji, now],
    );
    return rows.length > 0;
  }

  async removeReaction(messageId: string, userId: string, emoji: string): Promise<boolean> {
    const rows = await this.rows('DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3 RETURNING 1 AS removed', [messageId, userId, emoji]);
    return rows.length > 0;
  }

  async clearReactions(messageId: string): Promise<void> {
    await this.rows('DELETE FROM reactions WHERE message_id = $1', [messageId]);
  }

  reactionsOf(messageId: string): Promise<{ emoji: string; user_id: string }[]> {
    return this.rows('SELECT emoji, user_id FROM reactions WHERE message_id = $1 ORDER BY created_at, user_id', [messageId]);
  }

  async insert(messages: MessageView[], createdAtMs: number): Promise<void> {
    for (const chunk of chunks(messages)) {
      let n = 0;
      await this.em.queryRunner!.query(insertSql(chunk.length, () => `$${++n}`), insertParams(chunk, createdAtMs));
    }
  }

  /**
   * One statement per INSERT_CHUNK markers, not one per marker. The rows' lock order does not
   * matter here: a batch moves only markers of channels whose rows it holds (takeHeads), so two
   * batches that share a marker have already queued on its channel.
   */
  async advanceMarkers(markers: ReadMarker[]): Promise<void> {
    for (const chunk of chunks(markers)) {
      await this.em.queryRunner!.query(
        `UPDATE memberships m SET last_read_seq = v.seq FROM (VALUES ${valuesList(chunk.length, ['::varchar', '::varchar', '::int'])}) AS v(channel_id, user_id, seq)
         WHERE m.channel_id = v.channel_id AND m.user_id = v.user_id AND m.last_read_seq < v.seq`,
        chunk.flatMap((m) => [m.channelId, m.userId, m.seq]),
      );
    }
  }

  async appendOutbox(rows: OutboxRow[]): Promise<void> {
    const lock = outboxLockStatement(rows);
    await this.em.queryRunner!.query(lock.sql, lock.params);
    for (const { sql, params } of outboxInsertStatements(rows, 'postgres')) await this.em.queryRunner!.query(sql, params);
  }
}

/**
 * A batch run again after its writer thread died (MessageStore.writeBatch): what it finds already
 * stored or already in place is what the dead run committed, and is answered and fanned out as new.
 */
function recovered(result: BatchResult): BatchResult {
  const outcomes = result.outcomes.map((o) => {
    if (o instanceof AppError) return o;
    if ('duplicate' in o) return o.duplicate ? { ...o, duplicate: false } : o;
    return o.changed ? o : { ...o, changed: true };
  });
  return { ...result, outcomes };
}
