import { Injectable } from '@nestjs/common';
import type Database from 'better-sqlite3';
import { DataSource, EntityManager } from 'typeorm';
import { DatabaseWriter } from '../database/database-writer.js';
import { MESSAGE_COLUMNS, MessageRow, MessageView, rowToMessage } from './message.mapper.js';
import { SYSTEM_USER_ID } from '../users/system-user.js';

/** The four statements of a send batch, run inside one transaction (see MessageWriter). */
export interface MessageBatchOps {
  /** Stored messages of these (senderId, clientMsgId) pairs, keyed `${senderId}\u0000${clientMsgId}`. */
  findExisting(pairs: { senderId: string; clientMsgId: string }[]): Promise<Map<string, MessageView>> | Map<string, MessageView>;
  /** Which of these (channelId, userId) pairs are memberships, keyed `${channelId}\u0000${userId}`. */
  findMembers(pairs: { channelId: string; userId: string }[]): Promise<Set<string>> | Set<string>;
  /** Adds n to the channel's head_seq and returns the new head (null: no such channel). */
  bumpHead(channelId: string, n: number): Promise<number | null> | number | null;
  insert(messages: MessageView[], createdAtMs: number): Promise<void> | void;
  /** Moves a member's read marker up to seq (never down). */
  advanceMarker(channelId: string, userId: string, seq: number): Promise<void> | void;
}

export const pairKey = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

/** Rows per multi-row INSERT: 7 parameters each stays far below every driver's bind limit. */
const INSERT_CHUNK = 100;

/**
 * Runs a send batch in one transaction with the statements of the database at hand.
 *
 * SQLite: the statements are prepared once and run synchronously on better-sqlite3's connection
 * (TypeORM's own), inside the DatabaseWriter's exclusive slot so no other transaction is open;
 * TypeORM's per-query machinery cost more than the statements themselves.
 * PostgreSQL: the same statements through a TypeORM transaction on the pool.
 */
@Injectable()
export class MessageStore {
  private readonly sqlite: SqliteOps | null;

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
  private readonly inserts = new Map<number, Database.Statement>();
  private readonly reads = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {
    this.lookup = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.sender_id = ? AND m.client_msg_id = ?`,
    );
    this.bump = db.prepare('UPDATE channels SET head_seq = head_seq + ? WHERE id = ? RETURNING head_seq');
    this.marker = db.prepare('UPDATE memberships SET last_read_seq = ? WHERE channel_id = ? AND user_id = ? AND last_read_seq < ?');
    this.member = db.prepare('SELECT 1 FROM memberships WHERE channel_id = ? AND user_id = ?');
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

  bumpHead(channelId: string, n: number): number | null {
    const row = this.bump.get(n, channelId) as { head_seq: number } | undefined;
    return row ? row.head_seq : null;
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

  async bumpHead(channelId: string, n: number): Promise<number | null> {
    const rows = await this.rows<{ head_seq: number }>('UPDATE channels SET head_seq = head_seq + $1 WHERE id = $2 RETURNING head_seq', [n, channelId]);
    return rows.length ? Number(rows[0].head_seq) : null;
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
}

function insertSql(rows: number, placeholder: () => string): string {
  const tuple = () => `(${Array.from({ length: 7 }, placeholder).join(', ')})`;
  return `INSERT INTO messages (id, channel_id, seq, sender_id, text, client_msg_id, created_at) VALUES ${Array.from({ length: rows }, tuple).join(', ')}`;
}

function insertParams(messages: MessageView[], createdAtMs: number): unknown[] {
  const params: unknown[] = [];
  for (const m of messages) params.push(m.id, m.channelId, m.seq, m.sender?.id ?? SYSTEM_USER_ID, m.text, m.clientMsgId, createdAtMs);
  return params;
}
