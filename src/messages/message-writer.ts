import { Injectable, Logger } from '@nestjs/common';
import { v7 as uuidv7 } from 'uuid';
import { AppError } from '../common/app-error.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import type { MessageView } from './message.mapper.js';
import { MessageBatchOps, MessageStore, pairKey } from './message-store.js';

export interface SendRequest {
  channelId: string;
  sender: { id: string; username: string };
  text: string;
  clientMsgId: string;
  /** A system message (server API): no membership needed, no read marker moved; `sender` is the system user. */
  system?: boolean;
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

  constructor(private readonly store: MessageStore) {}

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
    const outcomes = await this.writeSplitting(batch.map((p) => p.req));
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

  /**
   * One transaction for the whole batch; if it fails, each half gets its own, and so on down to
   * the one send at fault, which alone gets the error. A bad send thus costs its neighbours a few
   * transactions (log2 of the batch), not one each; halves run in order, so seqs stay in commit
   * order. A unique violation (the same clientMsgId committed by another instance meanwhile) is
   * retried once: the second look finds the original.
   */
  private async writeSplitting(reqs: SendRequest[], attempt = 0): Promise<(SendOutcome | Error)[]> {
    try {
      return await this.store.transaction((ops) => this.writeBatch(ops, reqs));
    } catch (err) {
      if (reqs.length > 1) {
        if (attempt === 0) this.logger.warn(`batch of ${reqs.length} failed (${(err as Error).message}); splitting it`);
        const half = Math.ceil(reqs.length / 2);
        return [...(await this.writeSplitting(reqs.slice(0, half), 1)), ...(await this.writeSplitting(reqs.slice(half), 1))];
      }
      if (isUniqueViolation(err) && attempt < 2) return this.writeSplitting(reqs, 2);
      if (isUniqueViolation(err)) return [new AppError('conflict', 'the message could not be stored; retry with the same clientMsgId')];
      if (err instanceof AppError) return [err];
      this.logger.error(`send failed: ${(err as Error).message}`);
      return [new AppError('internal', 'the message could not be stored')];
    }
  }

  private async writeBatch(ops: MessageBatchOps, reqs: SendRequest[]): Promise<(SendOutcome | AppError)[]> {
    const outcomes: (SendOutcome | AppError)[] = new Array(reqs.length);

    // 1. Idempotency: originals already stored, and repeats inside this very batch.
    const stored = await ops.findExisting(reqs.map((r) => ({ senderId: r.sender.id, clientMsgId: r.clientMsgId })));
    const firstInBatch = new Map<string, number>();
    const repeats: [number, number][] = [];
    const byChannel = new Map<string, number[]>();
    reqs.forEach((r, i) => {
      const key = pairKey(r.sender.id, r.clientMsgId);
      const original = stored.get(key);
      const first = firstInBatch.get(key);
      if (original) outcomes[i] = { message: original, duplicate: true };
      else if (first !== undefined) repeats.push([i, first]);
      else {
        firstInBatch.set(key, i);
        const list = byChannel.get(r.channelId);
        if (list) list.push(i);
        else byChannel.set(r.channelId, [i]);
      }
    });

    // 2. Membership, from the database: the in-memory check that let the send in may not have
    //    heard yet of a leave on another instance (the bus is a round trip behind the commit).
    const members = await ops.findMembers([...byChannel].flatMap(([channelId, idx]) => idx.filter((i) => !reqs[i].system).map((i) => ({ channelId, userId: reqs[i].sender.id }))));
    for (const [channelId, idx] of byChannel) {
      const kept = idx.filter((i) => reqs[i].system || members.has(pairKey(channelId, reqs[i].sender.id)));
      for (const i of idx) if (!kept.includes(i)) outcomes[i] = AppError.forbidden('not a member of this channel');
      if (kept.length > 0) byChannel.set(channelId, kept);
      else byChannel.delete(channelId);
    }

    // 3. Sequence numbers, channel by channel in a fixed order (the lock order across instances).
    const now = Date.now();
    const createdAt = new Date(now).toISOString();
    const created: MessageView[] = [];
    for (const channelId of [...byChannel.keys()].sort()) {
      const idx = byChannel.get(channelId)!;
      const head = await ops.bumpHead(channelId, idx.length);
      if (head === null) throw AppError.notFound('channel');
      idx.forEach((i, k) => {
        const r = reqs[i];
        const message: MessageView = {
          // Time-ordered ids: new rows land at the end of the primary-key index, not all over it.
          id: uuidv7(),
          channelId,
          seq: head - idx.length + 1 + k,
          kind: r.system ? 'system' : 'user',
          sender: r.system ? null : { id: r.sender.id, username: r.sender.username },
          text: r.text,
          clientMsgId: r.clientMsgId,
          createdAt,
        };
        outcomes[i] = { message, duplicate: false };
        created.push(message);
      });
    }

    // 4. The rows, in multi-row INSERTs.
    await ops.insert(created, now);

    // 5. Sending reads up to one's own message: that is what makes unread = head - lastRead exact.
    const markers = new Map<string, { channelId: string; userId: string; seq: number }>();
    for (const m of created) {
      if (!m.sender) continue; // a system message reads nobody's marker forward
      const key = pairKey(m.channelId, m.sender.id);
      const cur = markers.get(key);
      if (!cur || cur.seq < m.seq) markers.set(key, { channelId: m.channelId, userId: m.sender.id, seq: m.seq });
    }
    for (const m of markers.values()) await ops.advanceMarker(m.channelId, m.userId, m.seq);

    // Repeats inside the batch get the message their first copy created.
    for (const [i, first] of repeats) {
      const original = outcomes[first];
      outcomes[i] = original instanceof AppError ? original : { message: original.message, duplicate: true };
    }
    return outcomes;
  }
}
