import type Database from 'better-sqlite3';
import type { OutboxRow } from '../webhooks/webhook-events.js';
import { outboxInsertStatements } from '../webhooks/webhook-outbox-sql.js';
import { MESSAGE_COLUMNS, MessageRow, MessageView, jsonOrNull, rowToMessage } from './message.mapper.js';
import { SYSTEM_USER_ID } from '../users/system-user.js';
import { Heads, MessageBatchOps, pairKey, type ReadMarker } from './message-batch.js';

/*
 * The message batch's statements on a better-sqlite3 connection, and the SQL text both
 * databases share. Plain code (no Nest, no TypeORM): the SQLite writer thread runs it on its own
 * connection (sqlite-writer.worker.ts), the main thread only for `:memory:` (one connection).
 * The statements are prepared once and run synchronously: TypeORM's per-query machinery cost
 * more than the statements themselves.
 */

/** Rows per multi-row INSERT: 11 parameters each stays far below every driver's bind limit. */
export const INSERT_CHUNK = 100;

export class SqliteOps implements MessageBatchOps {
  private readonly lookup: Database.Statement;
  private readonly bump: Database.Statement;
  private readonly marker: Database.Statement;
  private readonly member: Database.Statement;
  private readonly heads: Database.Statement;
  private readonly headRev: Database.Statement;
  private readonly one: Database.Statement;
  private readonly replies: Database.Statement;
  private readonly role: Database.Statement;
  private readonly updateOne: Database.Statement;
  private readonly dropMentions: Database.Statement;
  private readonly addMention: Database.Statement;
  private readonly react: Database.Statement;
  private readonly unreact: Database.Statement;
  private readonly unreactAll: Database.Statement;
  private readonly reactions: Database.Statement;
  private readonly inserts = new Map<number, Database.Statement>();
  /** The search indexing's statements, prepared on first use (the FTS tables exist by then: migrations ran). */
  private indexing?: { mark: Database.Statement; top: Database.Statement; add: Database.Statement; setMark: Database.Statement };

  constructor(readonly db: Database.Database) {
    this.lookup = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.sender_id = ? AND m.client_msg_id = ?`,
    );
    this.bump = db.prepare('UPDATE channels SET head_seq = head_seq + ?, head_rev = head_rev + ? WHERE id = ? AND archived_at IS NULL RETURNING head_seq, head_rev');
    this.heads = db.prepare('SELECT head_seq, head_rev, archived_at FROM channels WHERE id = ?');
    this.headRev = db.prepare('UPDATE channels SET head_rev = ? WHERE id = ?');
    this.one = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.channel_id = ? AND m.seq = ?`);
    this.replies = db.prepare(REPLIES_SQL.replace(/\$\d+/g, '?'));
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
    const q = (this.indexing ??= {
      mark: this.db.prepare('SELECT indexed_rowid FROM messages_fts_state WHERE id = 1').pluck(),
      top: this.db.prepare('SELECT max(rowid) FROM (SELECT rowid FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?)').pluck(),
      add: this.db.prepare('INSERT INTO messages_fts(rowid, text) SELECT rowid, text FROM messages WHERE rowid > ? AND rowid <= ?'),
      setMark: this.db.prepare('UPDATE messages_fts_state SET indexed_rowid = ? WHERE id = 1'),
    });
    const mark = (q.mark.get() as number | undefined) ?? 0;
    const top = q.top.get(mark, n) as number | null;
    if (top === null) return false;
    const added = q.add.run(mark, top).changes;
    q.setMark.run(top);
    return added >= n;
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

  // One statement per channel: in process, a statement costs microseconds, not a round trip.
  takeHeads(channels: [channelId: string, n: number][]): Map<string, Heads> {
    const taken = new Map<string, Heads>();
    for (const [channelId, n] of channels) {
      const bumped = n > 0 ? (this.bump.get(n, n, channelId) as { head_seq: number; head_rev: number } | undefined) : undefined;
      if (bumped) {
        taken.set(channelId, { headSeq: bumped.head_seq, headRev: bumped.head_rev });
        continue;
      }
      // Changes only, or not bumped: gone, or archived (the caller tells which from this).
      const row = this.heads.get(channelId) as { head_seq: number; head_rev: number; archived_at: number | null } | undefined;
      if (row) taken.set(channelId, { headSeq: row.head_seq, headRev: row.head_rev, archived: row.archived_at !== null });
    }
    return taken;
  }

  setHeadRev(channelId: string, rev: number): void {
    this.headRev.run(rev, channelId);
  }

  findMessage(channelId: string, seq: number): MessageView | null {
    const row = this.one.get(channelId, seq) as MessageRow | undefined;
    return row ? rowToMessage(row) : null;
  }

  repliesTo(channelId: string, seq: number): MessageView[] {
    return (this.replies.all(channelId, seq) as MessageRow[]).map(rowToMessage);
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

  advanceMarkers(markers: ReadMarker[]): void {
    for (const m of markers) this.marker.run(m.seq, m.channelId, m.userId, m.seq);
  }

  appendOutbox(rows: OutboxRow[]): void {
    for (const { sql, params } of outboxInsertStatements(rows, 'sqlite')) this.db.prepare(sql).run(params);
  }
}

const INSERT_COLUMNS = ['id', 'channel_id', 'seq', 'rev', 'sender_id', 'text', 'client_msg_id', 'created_at', 'reply_to_seq', 'reply_to', 'mentions'];

export function insertSql(rows: number, placeholder: () => string): string {
  const tuple = () => `(${Array.from({ length: INSERT_COLUMNS.length }, placeholder).join(', ')})`;
  return `INSERT INTO messages (${INSERT_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, tuple).join(', ')}`;
}

export function insertParams(messages: MessageView[], createdAtMs: number): unknown[] {
  const params: unknown[] = [];
  for (const m of messages) {
    params.push(m.id, m.channelId, m.seq, m.rev, m.sender?.id ?? SYSTEM_USER_ID, m.text, m.clientMsgId, createdAtMs);
    params.push(m.replyTo?.seq ?? null, m.replyTo ? JSON.stringify(m.replyTo) : null, jsonOrNull(m.mentions));
  }
  return params;
}

/**
 * A message's replies, not deleted (MessageBatchOps.repliesTo), through the partial index
 * idx_messages_reply_to. No ORDER BY seq: SQLite would rather walk the channel's (channel_id, seq)
 * index, all of it, to skip a sort; the caller sorts the few rows.
 */
export const REPLIES_SQL = `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
  WHERE m.channel_id = $1 AND m.reply_to_seq = $2 AND m.deleted_at IS NULL`;

export const UPDATE_SQL = `UPDATE messages SET text = $1, rev = $2, edited_at = $3, deleted_at = $4, reply_to = $5, mentions = $6, reactions = $7
  WHERE channel_id = $8 AND seq = $9`;

/** The mutable columns of a changed message (deleted_at: kept from the first delete, or now). */
export function updateParams(m: MessageView, now: number): unknown[] {
  return [
    m.text, m.rev, m.editedAt ? Date.parse(m.editedAt) : null, m.deleted ? now : null, m.replyTo ? JSON.stringify(m.replyTo) : null,
    jsonOrNull(m.mentions), jsonOrNull(m.reactions), m.channelId, m.seq,
  ];
}
