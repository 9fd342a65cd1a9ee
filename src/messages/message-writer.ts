import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { isUniqueViolation } from '../users/users.service.js';
import { MESSAGE_COLUMNS, MessageRow, MessageView, rowToMessage } from './message.mapper.js';

export interface SendRequest {
  channelId: string;
  sender: { id: string; username: string };
  text: string;
  clientMsgId: string;
}

export interface SendOutcome {
  message: MessageView;
  duplicate: boolean;
}

interface Pending {
  req: SendRequest;
  resolve: (outcome: SendOutcome) => void;
  reject: (err: unknown) => void;
}

/** Rows per multi-row INSERT: 7 parameters each stays far below every driver's bind limit. */
const INSERT_CHUNK = 500;
/** Sends per transaction; more wait for the next one. */
const MAX_BATCH = 2000;

/**
 * Group commit: every send that arrives while the previous transaction is running (or in the
 * same turn of the event loop) is written by the next transaction, with one multi-row INSERT.
 * The write path is serialized, so commits, and hence fan-out, happen in seq order.
 *
 * In one transaction per batch:
 *  1. look up (sender, clientMsgId) pairs already stored: a retry gets its original back;
 *  2. bump each channel's head_seq by its number of new messages (UPDATE ... RETURNING): the
 *     row lock makes seq gap-free also across processes on PostgreSQL; channels are locked in
 *     id order so two instances cannot deadlock;
 *  3. insert the messages; 4. move each sender's read marker to their newest message.
 * Only after COMMIT are the senders answered, so an acknowledged message is a stored one.
 */
@Injectable()
export class MessageWriter {
  private readonly logger = new Logger(MessageWriter.name);
  private queue: Pending[] = [];
  private scheduled = false;
  private running = false;
  private idle: (() => void)[] = [];
  /** Called synchronously after each commit with the new messages, in seq order per channel. */
  onCommitted: (created: MessageView[]) => void = () => undefined;

  constructor(private readonly db: DatabaseWriter) {}

  write(req: SendRequest): Promise<SendOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything queued so far is committed (graceful shutdown). */
  drain(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    // setImmediate, not a microtask: every frame read in this I/O phase joins the batch.
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    const batch = this.queue.splice(0, MAX_BATCH);
    let outcomes: (SendOutcome | Error)[];
    try {
      outcomes = await this.db.transaction((em) => this.writeBatch(em, batch.map((p) => p.req)));
    } catch (err) {
      // One bad send (or a race with another instance) must not fail its neighbours:
      // write them one by one so each gets its own answer.
      this.logger.warn(`batch of ${batch.length} failed (${(err as Error).message}); retrying one by one`);
      outcomes = [];
      for (const p of batch) outcomes.push(await this.writeOne(p.req));
    }
    const created = outcomes.filter((o): o is SendOutcome => !(o instanceof Error) && !o.duplicate).map((o) => o.message);
    if (created.length > 0) {
      try {
        this.onCommitted(created);
      } catch (err) {
        this.logger.error(`post-commit hook failed: ${(err as Error).stack}`);
      }
    }
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (o instanceof Error) p.reject(o);
      else p.resolve(o);
    });
    this.running = false;
    if (this.queue.length > 0) this.schedule();
    else for (const done of this.idle.splice(0)) done();
  }

  private async writeOne(req: SendRequest): Promise<SendOutcome | Error> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const [outcome] = await this.db.transaction((em) => this.writeBatch(em, [req]));
        return outcome;
      } catch (err) {
        if (isUniqueViolation(err)) continue; // the same clientMsgId committed elsewhere: look again
        this.logger.error(`send failed: ${(err as Error).message}`);
        return new AppError('internal', 'the message could not be stored');
      }
    }
    return new AppError('conflict', 'the message could not be stored; retry with the same clientMsgId');
  }

  private async writeBatch(em: EntityManager, reqs: SendRequest[]): Promise<SendOutcome[]> {
    const pg = this.db.dialect === 'postgres';
    const outcomes: SendOutcome[] = new Array(reqs.length);

    // 1. Idempotency: originals already stored, and repeats inside this very batch.
    const stored = await this.findExisting(em, reqs, pg);
    const firstInBatch = new Map<string, number>();
    const fresh: number[] = [];
    reqs.forEach((r, i) => {
      const key = `${r.sender.id}\u0000${r.clientMsgId}`;
      const original = stored.get(key);
      if (original) outcomes[i] = { message: original, duplicate: true };
      else if (firstInBatch.has(key)) outcomes[i] = { message: undefined as never, duplicate: true };
      else {
        firstInBatch.set(key, i);
        fresh.push(i);
      }
    });

    // 2. Sequence numbers, channel by channel in a fixed order.
    const byChannel = new Map<string, number[]>();
    for (const i of fresh) {
      const list = byChannel.get(reqs[i].channelId) ?? [];
      list.push(i);
      byChannel.set(reqs[i].channelId, list);
    }
    const now = Date.now();
    const createdAt = new Date(now).toISOString();
    for (const channelId of [...byChannel.keys()].sort()) {
      const idx = byChannel.get(channelId)!;
      const rows = await records<{ head_seq: number | string }>(
        em,
        pg
          ? 'UPDATE channels SET head_seq = head_seq + $1 WHERE id = $2 RETURNING head_seq'
          : 'UPDATE channels SET head_seq = head_seq + ? WHERE id = ? RETURNING head_seq',
        [idx.length, channelId],
      );
      const head = Number(rows[0]?.head_seq);
      if (!Number.isFinite(head)) throw AppError.notFound('channel');
      idx.forEach((i, k) => {
        const r = reqs[i];
        outcomes[i] = {
          duplicate: false,
          message: {
            id: randomUUID(),
            channelId,
            seq: head - idx.length + 1 + k,
            sender: { id: r.sender.id, username: r.sender.username },
            text: r.text,
            clientMsgId: r.clientMsgId,
            createdAt,
          },
        };
      });
    }

    // 3. One multi-row INSERT per chunk.
    const created = fresh.map((i) => outcomes[i].message);
    for (let start = 0; start < created.length; start += INSERT_CHUNK) {
      const chunk = created.slice(start, start + INSERT_CHUNK);
      const params: unknown[] = [];
      const tuples = chunk.map((m) => {
        params.push(m.id, m.channelId, m.seq, m.sender.id, m.text, m.clientMsgId, now);
        const n = params.length;
        return pg ? `($${n - 6}, $${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})` : '(?, ?, ?, ?, ?, ?, ?)';
      });
      await em.query(
        `INSERT INTO messages (id, channel_id, seq, sender_id, text, client_msg_id, created_at) VALUES ${tuples.join(', ')}`,
        params,
      );
    }

    // 4. Sending reads up to one's own message: that is what makes unread = head - lastRead exact.
    const markers = new Map<string, { channelId: string; userId: string; seq: number }>();
    for (const m of created) {
      const key = `${m.channelId}\u0000${m.sender.id}`;
      const cur = markers.get(key);
      if (!cur || cur.seq < m.seq) markers.set(key, { channelId: m.channelId, userId: m.sender.id, seq: m.seq });
    }
    for (const mk of markers.values()) {
      await em.query(
        pg
          ? 'UPDATE memberships SET last_read_seq = $1 WHERE channel_id = $2 AND user_id = $3 AND last_read_seq < $4'
          : 'UPDATE memberships SET last_read_seq = ? WHERE channel_id = ? AND user_id = ? AND last_read_seq < ?',
        [mk.seq, mk.channelId, mk.userId, mk.seq],
      );
    }

    // Repeats inside the batch get the message their first copy created.
    reqs.forEach((r, i) => {
      if (outcomes[i].message === undefined) {
        outcomes[i] = { message: outcomes[firstInBatch.get(`${r.sender.id}\u0000${r.clientMsgId}`)!].message, duplicate: true };
      }
    });
    return outcomes;
  }

  private async findExisting(em: EntityManager, reqs: SendRequest[], pg: boolean): Promise<Map<string, MessageView>> {
    const found = new Map<string, MessageView>();
    for (let start = 0; start < reqs.length; start += INSERT_CHUNK) {
      const chunk = reqs.slice(start, start + INSERT_CHUNK);
      const params: string[] = [];
      const pairs = chunk.map((r) => {
        params.push(r.sender.id, r.clientMsgId);
        return pg ? `($${params.length - 1}, $${params.length})` : '(?, ?)';
      });
      const rows = await records<MessageRow>(
        em,
        `SELECT ${MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE (m.sender_id, m.client_msg_id) IN (VALUES ${pairs.join(', ')})`,
        params,
      );
      for (const row of rows) found.set(`${row.sender_id}\u0000${row.client_msg_id}`, rowToMessage(row));
    }
    return found;
  }
}

/** Rows of a statement, the same shape on both drivers (plain query() differs for UPDATE). */
async function records<T>(em: EntityManager, sql: string, params: unknown[]): Promise<T[]> {
  const result = await em.queryRunner!.query(sql, params, true);
  return (result.records ?? []) as T[];
}
