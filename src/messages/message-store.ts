import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type Database from 'better-sqlite3';
import { DataSource, EntityManager } from 'typeorm';
import { DatabaseWriter } from '../database/database-writer.js';
import type { OutboxRow } from '../webhooks/webhook-events.js';
import { outboxInsertStatements, outboxLockStatement } from '../webhooks/webhook-outbox.js';
import { MESSAGE_COLUMNS, MessageRow, MessageView, jsonOrNull, rowToMessage } from './message.mapper.js';
import { SYSTEM_USER_ID } from '../users/system-user.js';

/** The four statements of a send batch, run inside one transaction (see MessageWriter). */
export interface MessageBatchOps {
  /** Stored messages of these (senderId, clientMsgId) pairs, keyed `${senderId}\u0000${clientMsgId}`. */
  findExisting(pairs: { senderId: string; clientMsgId: string }[]): Promise<Map<string, MessageView>> | Map<string, MessageView>;
  /** Which of these (channelId, userId) pairs are memberships, keyed `${channelId}\u0000${userId}`. */
  findMembers(pairs: { channelId: string; userId: string }[]): Promise<Set<string>> | Set<string>;
  /** Adds n to the channel's head_seq and head_rev and returns the new heads (null: no such channel, or archived). */
  bumpHead(channelId: string, n: number): Promise<Heads | null> | Heads | null;
  /** Locks the channel's row (PostgreSQL; SQLite's writer is alone anyway) and reads its heads. */
  lockChannel(channelId: string): Promise<Heads | null> | Heads | null;
  setHeadRev(channelId: string, rev: number): Promise<void> | void;
  insert(messages: MessageView[], createdAtMs: number): Promise<void> | void;
  /** Moves a member's read marker up to seq (never down). */
  advanceMarker(channelId: string, userId: string, seq: number): Promise<void> | void;
  findMessage(channelId: string, seq: number): Promise<MessageView | null> | MessageView | null;
  roleOf(channelId: string, userId: string): Promise<string | null> | string | null;
  /** Writes a changed message's mutable columns (text, edited/deleted, reply, lists, rev). */
  update(m: MessageView, now: number): Promise<void> | void;
  /** Replaces the mention rows of a message (none: removes them). */
  setMentions(channelId: string, seq: number, userIds: string[], replace: boolean): Promise<void> | void;
  /** True when the reaction was not there before. */
  addReaction(messageId: string, userId: string, emoji: string, now: number): Promise<boolean> | boolean;
  /** True when the reaction was there. */
  removeReaction(messageId: string, userId: string, emoji: string): Promise<boolean> | boolean;
  clearReactions(messageId: string): Promise<void> | void;
  /** A message's reactions, oldest first. */
  reactionsOf(messageId: string): Promise<{ emoji: string; user_id: string }[]> | { emoji: string; user_id: string }[];
  /** Webhook events of the batch into the outbox (WebhookOutbox.rows; never called with none). */
  appendOutbox(rows: OutboxRow[]): Promise<void> | void;
}

export interface Heads {
  headSeq: number;
  headRev: number;
  /** lockChannel only: the channel is archived (read-only). */
  archived?: boolean;
}

export const pairKey = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

/** Rows per multi-row INSERT: 11 parameters each stays far below every driver's bind limit. */
const INSERT_CHUNK = 100;

/**
 * Runs a send batch in one transaction with the statements of the database at hand.
 *
 * SQLite: the statements are prepared once and run synchronously on better-sqlite3's connection
 * (TypeORM's own), inside the DatabaseWriter's exclusive slot so no other transaction is open;
 * TypeORM's per-query machinery cost more than the statements themselves.
 * PostgreSQL: the same statements through a TypeORM transaction on the pool.
 */
/** Messages per indexing transaction, and how long after a send the indexing runs. */
const INDEX_BATCH = 5000;
const INDEX_DELAY_MS = 1000;

@Injectable()
export class MessageStore implements OnApplicationBootstrap {
  private readonly sqlite: SqliteOps | null;
  private readonly logger = new Logger('MessageStore');
  private indexTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly writer: DatabaseWriter,
  ) {
    this.sqlite =
      writer.dialect === 'sqlite'
        ? new SqliteOps((dataSource.driver as unknown as { databaseConnection: Database.Database }).databaseConnection)
        : null;
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
   * slipped in between the two reads. SQLite: both statements run synchronously on the one
   * connection, so no write can come between them; PostgreSQL: a REPEATABLE READ transaction.
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
      return {
        changes: q.rev === null ? [] : sqlite.all<MessageRow>(changesSql, changeParams),
        messages: sqlite.all<MessageRow>(messagesSql, messageParams),
      };
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
    const sqlite = this.sqlite;
    if (!sqlite) return Promise.resolve();
    return this.writer.exclusive(async () => {
      for (let full = true; full; ) {
        sqlite.db.exec('BEGIN IMMEDIATE');
        try {
          full = sqlite.indexBatch(INDEX_BATCH);
          sqlite.db.exec('COMMIT');
        } catch (err) {
          if (sqlite.db.inTransaction) sqlite.db.exec('ROLLBACK');
          throw err;
        }
      }
    });
  }

  /** Indexes new messages a little later, in one batch (SQLite; see indexPending). */
  scheduleIndexing(): void {
    if (!this.sqlite || this.indexTimer) return;
    this.indexTimer = setTimeout(() => {
      this.indexTimer = null;
      this.indexPending().catch((err: Error) => this.logger.warn(`search indexing failed (retried after the next send): ${err.message}`));
    }, INDEX_DELAY_MS);
    this.indexTimer.unref();
  }

  onApplicationBootstrap(): Promise<void> {
    return this.indexPending(); // what a crash left unindexed
  }

  transaction<T>(work: (ops: MessageBatchOps) => Promise<T>): Promise<T> {
    const sqlite = this.sqlite;
    if (!sqlite) return this.writer.transaction((em) => work(new PostgresOps(em)));
    return this.writer.exclusive(async () => {
      sqlite.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(sqlite);
        sqlite.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (sqlite.db.inTransaction) sqlite.db.exec('ROLLBACK');
        throw err;
      }
    });
  }
}

class SqliteOps implements MessageBatchOps {
  private readonly lookup: Database.Statement;
  private readonly bump: Database.Statement;
  private readonly marker: Database.Statement;
  private readonly member: Database.Statement;
  private readonly heads: Database.Statement;
  private readonly headRev: Database.Statement;
  private readonly one: Database.Statement;
  private readonly role: Database.Statement;
  private readonly updateOne: Database.Statement;
  private readonly dropMentions: Database.Statement;
  private readonly addMention: Database.Statement;
  private readonly react: Database.Statement;
  private readonly unreact: Database.Statement;
  private readonly unreactAll: Database.Statement;
  private readonly reactions: Database.Statement;
  private readonly inserts = new Map<number, Database.Statement>();
  private readonly reads = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {
    this.lookup = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.sender_id = ? AND m.client_msg_id = ?`,
    );
    this.bump = db.prepare('UPDATE channels SET head_seq = head_seq + ?, head_rev = head_rev + ? WHERE id = ? AND archived_at IS NULL RETURNING head_seq, head_rev');
    this.heads = db.prepare('SELECT head_seq, head_rev, archived_at FROM channels WHERE id = ?');
    this.headRev = db.prepare('UPDATE channels SET head_rev = ? WHERE id = ?');
    this.one = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.channel_id = ? AND m.seq = ?`);
    this.role = db.prepare('SELECT role FROM memberships WHERE channel_id = ? AND user_id = ?');
    this.updateOne = db.prepare(UPDATE_SQL.replace(/\$\d+/g, '?'));
    this.dropMentions = db.prepare('DELETE FROM message_mentions WHERE channel_id = ? AND seq = ?');
    this.addMention = db.prepare('INSERT INTO message_mentions (channel_id, seq, user_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    this.react = db.prepare('INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
    this.unreact = db.prepare('DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?');
    this.unreactAll = db.prepare('DELETE FROM reactions WHERE message_id = ?');
    this.reactions = db.prepare('SELECT emoji, user_id FROM reactions WHERE message_id = ? ORDER BY created_at, rowid');
    this.marker = db.prepare('UPDATE memberships SET last_read_seq = ? WHERE channel_id = ? AND user_id = ? AND last_read_seq < ?');
    this.member = db.prepare('SELECT 1 FROM memberships WHERE channel_id = ? AND user_id = ?');
  }

  /** Indexes up to `n` messages above the mark; true when there may be more. */
  indexBatch(n: number): boolean {
    const mark = (this.db.prepare('SELECT indexed_rowid FROM messages_fts_state WHERE id = 1').pluck().get() as number | undefined) ?? 0;
    const top = this.db.prepare('SELECT max(rowid) FROM (SELECT rowid FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?)').pluck().get(mark, n) as number | null;
    if (top === null) return false;
    const added = this.db.prepare('INSERT INTO messages_fts(rowid, text) SELECT rowid, text FROM messages WHERE rowid > ? AND rowid <= ?').run(mark, top).changes;
    this.db.prepare('UPDATE messages_fts_state SET indexed_rowid = ? WHERE id = 1').run(top);
    return added >= n;
  }

  /** A read through a statement prepared once per SQL text (a handful of shapes). */
  all<T>(sql: string, params: unknown[]): T[] {
    let stmt = this.reads.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.reads.set(sql, stmt);
    }
    return stmt.all(params) as T[];
  }

  findExisting(pairs: { senderId: string; clientMsgId: string }[]): Map<string, MessageView> {
    const found = new Map<string, MessageView>();
    for (const p of pairs) {
      const row = this.lookup.get(p.senderId, p.clientMsgId) as MessageRow | undefined;
      if (row) found.set(pairKey(p.senderId, p.clientMsgId), rowToMessage(row));
    }
    return found;
  }

  findMembers(pairs: { channelId: string; userId: string }[]): Set<string> {
    const found = new Set<string>();
    for (const p of pairs) {
      const key = pairKey(p.channelId, p.userId);
      if (!found.has(key) && this.member.get(p.channelId, p.userId)) found.add(key);
    }
    return found;
  }

  bumpHead(channelId: string, n: number): Heads | null {
    const row = this.bump.get(n, n, channelId) as { head_seq: number; head_rev: number } | undefined;
    return row ? { headSeq: row.head_seq, headRev: row.head_rev } : null;
  }

  lockChannel(channelId: string): Heads | null {
    const row = this.heads.get(channelId) as { head_seq: number; head_rev: number; archived_at: number | null } | undefined;
    return row ? { headSeq: row.head_seq, headRev: row.head_rev, archived: row.archived_at !== null } : null;
  }

  setHeadRev(channelId: string, rev: number): void {
    this.headRev.run(rev, channelId);
  }

  findMessage(channelId: string, seq: number): MessageView | null {
    const row = this.one.get(channelId, seq) as MessageRow | undefined;
    return row ? rowToMessage(row) : null;
  }

  roleOf(channelId: string, userId: string): string | null {
    return (this.role.get(channelId, userId) as { role: string } | undefined)?.role ?? null;
  }

  update(m: MessageView, now: number): void {
    this.updateOne.run(updateParams(m, now));
  }

  setMentions(channelId: string, seq: number, userIds: string[], replace: boolean): void {
    if (replace) this.dropMentions.run(channelId, seq);
    for (const userId of userIds) this.addMention.run(channelId, seq, userId);
  }

  addReaction(messageId: string, userId: string, emoji: string, now: number): boolean {
    return this.react.run(messageId, userId, emoji, now).changes > 0;
  }

  removeReaction(messageId: string, userId: string, emoji: string): boolean {
    return this.unreact.run(messageId, userId, emoji).changes > 0;
  }

  clearReactions(messageId: string): void {
    this.unreactAll.run(messageId);
  }

  reactionsOf(messageId: string): { emoji: string; user_id: string }[] {
    return this.reactions.all(messageId) as { emoji: string; user_id: string }[];
  }

  insert(messages: MessageView[], createdAtMs: number): void {
    for (let start = 0; start < messages.length; start += INSERT_CHUNK) {
      const chunk = messages.slice(start, start + INSERT_CHUNK);
      let stmt = this.inserts.get(chunk.length);
      if (!stmt) {
        stmt = this.db.prepare(insertSql(chunk.length, () => '?'));
        this.inserts.set(chunk.length, stmt);
      }
      stmt.run(insertParams(chunk, createdAtMs));
    }
  }

  advanceMarker(channelId: string, userId: string, seq: number): void {
    this.marker.run(seq, channelId, userId, seq);
  }

  appendOutbox(rows: OutboxRow[]): void {
    for (const { sql, params } of outboxInsertStatements(rows, 'sqlite')) this.db.prepare(sql).run(params);
  }
}

class PostgresOps implements MessageBatchOps {
  constructor(private readonly em: EntityManager) {}

  private async rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    const result = await this.em.queryRunner!.query(sql, params, true);
    return (result.records ?? []) as T[];
  }

  async findExisting(pairs: { senderId: string; clientMsgId: string }[]): Promise<Map<string, MessageView>> {
    const found = new Map<string, MessageView>();
    for (let start = 0; start < pairs.length; start += INSERT_CHUNK) {
      const chunk = pairs.slice(start, start + INSERT_CHUNK);
      const params = chunk.flatMap((p) => [p.senderId, p.clientMsgId]);
      const values = chunk.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
      const rows = await this.rows<MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE (m.sender_id, m.client_msg_id) IN (VALUES ${values})`,
        params,
      );
      for (const row of rows) found.set(pairKey(row.sender_id, row.client_msg_id), rowToMessage(row));
    }
    return found;
  }

  async findMembers(pairs: { channelId: string; userId: string }[]): Promise<Set<string>> {
    const unique = [...new Map(pairs.map((p) => [pairKey(p.channelId, p.userId), p])).values()];
    const found = new Set<string>();
    for (let start = 0; start < unique.length; start += INSERT_CHUNK) {
      const chunk = unique.slice(start, start + INSERT_CHUNK);
      const values = chunk.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
      const rows = await this.rows<{ channel_id: string; user_id: string }>(
        `SELECT channel_id, user_id FROM memberships WHERE (channel_id, user_id) IN (VALUES ${values})`,
        chunk.flatMap((p) => [p.channelId, p.userId]),
      );
      for (const r of rows) found.add(pairKey(r.channel_id, r.user_id));
    }
    return found;
  }

  async bumpHead(channelId: string, n: number): Promise<Heads | null> {
    const rows = await this.rows<{ head_seq: number; head_rev: number }>(
      'UPDATE channels SET head_seq = head_seq + $1, head_rev = head_rev + $1 WHERE id = $2 AND archived_at IS NULL RETURNING head_seq, head_rev',
      [n, channelId],
    );
    return rows.length ? { headSeq: Number(rows[0].head_seq), headRev: Number(rows[0].head_rev) } : null;
  }

  async lockChannel(channelId: string): Promise<Heads | null> {
    const rows = await this.rows<{ head_seq: number; head_rev: number; archived_at: string | null }>(
      'SELECT head_seq, head_rev, archived_at FROM channels WHERE id = $1 FOR UPDATE',
      [channelId],
    );
    return rows.length ? { headSeq: Number(rows[0].head_seq), headRev: Number(rows[0].head_rev), archived: rows[0].archived_at !== null } : null;
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
    for (let start = 0; start < messages.length; start += INSERT_CHUNK) {
      const chunk = messages.slice(start, start + INSERT_CHUNK);
      let n = 0;
      await this.em.queryRunner!.query(insertSql(chunk.length, () => `$${++n}`), insertParams(chunk, createdAtMs));
    }
  }

  async advanceMarker(channelId: string, userId: string, seq: number): Promise<void> {
    await this.em.queryRunner!.query(
      'UPDATE memberships SET last_read_seq = $1 WHERE channel_id = $2 AND user_id = $3 AND last_read_seq < $1',
      [seq, channelId, userId],
    );
  }

  async appendOutbox(rows: OutboxRow[]): Promise<void> {
    const lock = outboxLockStatement(rows);
    await this.em.queryRunner!.query(lock.sql, lock.params);
    for (const { sql, params } of outboxInsertStatements(rows, 'postgres')) await this.em.queryRunner!.query(sql, params);
  }
}

const INSERT_COLUMNS = ['id', 'channel_id', 'seq', 'rev', 'sender_id', 'text', 'client_msg_id', 'created_at', 'reply_to_seq', 'reply_to', 'mentions'];

function insertSql(rows: number, placeholder: () => string): string {
  const tuple = () => `(${Array.from({ length: INSERT_COLUMNS.length }, placeholder).join(', ')})`;
  return `INSERT INTO messages (${INSERT_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, tuple).join(', ')}`;
}

function insertParams(messages: MessageView[], createdAtMs: number): unknown[] {
  const params: unknown[] = [];
  for (const m of messages) {
    params.push(m.id, m.channelId, m.seq, m.rev, m.sender?.id ?? SYSTEM_USER_ID, m.text, m.clientMsgId, createdAtMs);
    params.push(m.replyTo?.seq ?? null, m.replyTo ? JSON.stringify(m.replyTo) : null, jsonOrNull(m.mentions));
  }
  return params;
}

const UPDATE_SQL = `UPDATE messages SET text = $1, rev = $2, edited_at = $3, deleted_at = $4, reply_to = $5, mentions = $6, reactions = $7
  WHERE channel_id = $8 AND seq = $9`;

/** The mutable columns of a changed message (deleted_at: kept from the first delete, or now). */
function updateParams(m: MessageView, now: number): unknown[] {
  return [
    m.text, m.rev, m.editedAt ? Date.parse(m.editedAt) : null, m.deleted ? now : null, m.replyTo ? JSON.stringify(m.replyTo) : null,
    jsonOrNull(m.mentions), jsonOrNull(m.reactions), m.channelId, m.seq,
  ];
}
