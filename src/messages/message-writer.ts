import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service.js';
import { WebhookOutbox } from '../webhooks/webhook-outbox.js';
import type { ChangeOrigin } from '../fanout/changes.js';
import type { MessageView } from './message.mapper.js';
import { ChangeRequest, changedMessages, MAX_BATCH, Outcome, Request } from './message-batch.js';
import { MessageStore } from './message-store.js';
import type { BatchResult } from './sqlite-writer.js';
import type { ChangeOutcome, SendOutcome, SendRequest } from './message-batch.js';

// The batch itself (idempotency, membership, seq and rev, rows, markers, changes, outbox) is
// plain code in message-batch.ts, run where the database is (see MessageStore.writeBatch).
export { MAX_REACTION_EMOJI } from './message-batch.js';
export type { ChangeOutcome, ChangeRequest, SendOutcome, SendRequest } from './message-batch.js';

/** PostgreSQL: a queue this long, with no batch in flight, goes out as two batches (see MessageWriter.take). */
const SPLIT_AT = 64;

interface Pending {
  req: Request;
  resolve: (outcome: Outcome) => void;
  reject: (err: unknown) => void;
}

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
 *
 * Where the transaction runs: MessageStore.writeBatch. On an SQLite file that is the writer
 * thread (sqlite-writer.ts), one batch at a time: this class gathers the next batch while the
 * thread commits the previous one, hands it over as soon as that commit is reported (before
 * answering it: see flush), and answers each only when the thread reports its commit.
 *
 * Changes of stored messages (edit, delete, reaction) queue here too, so they follow the same
 * discipline: serialized with the sends, committed before anyone hears of them, and each takes
 * the channel's next `rev` under the channel's row lock, so rev order is commit order. Every
 * channel a batch touches is locked once, in id order (sends' bump or a plain lock), before any
 * change is applied: two instances' batches never wait for each other in a cycle.
 *
 * PostgreSQL: up to MessageStore.batchesInFlight batches at once, over disjoint channels. One
 * batch at a time left the instance waiting on round trips (the server and PostgreSQL each about
 * half idle in the ingest benchmark), and one batch waiting for a channel's row lock (held by
 * another instance) held up every other channel of the instance behind it. A request whose
 * channel is in a batch in flight waits for the next one, so each channel still has one batch at
 * a time: its seqs, revs, commits and post-commit hooks stay in order. What is not ordered any
 * more is commits across channels, which nothing relies on (each channel's sequencer, the bus and
 * the webhook outbox order per channel). The lock order holds as before: every batch takes its
 * channels in id order, so no set of batches, of one instance or several, can wait in a cycle.
 */
@Injectable()
export class MessageWriter implements BeforeApplicationShutdown {
  private readonly logger = new Logger(MessageWriter.name);
  private queue: Pending[] = [];
  private scheduled = false;
  /** Batches in the database now (at most store.batchesInFlight), each with the channels it holds. */
  private readonly inFlight = new Map<Pending[], Set<string>>();
  private idle: (() => void)[] = [];
  /**
   * Called synchronously after each commit with the new messages (in seq order per channel) and
   * the changed ones (in rev order), the changed after the new: that is their rev order too.
   */
  onCommitted: (created: MessageView[], updated: MessageView[], origin?: Record<number, ChangeOrigin>) => void = () => undefined;

  constructor(
    private readonly store: MessageStore,
    private readonly outbox: WebhookOutbox,
    private readonly metrics: MetricsService,
  ) {}

  write(req: SendRequest): Promise<SendOutcome> {
    return this.enqueue(req) as Promise<SendOutcome>;
  }

  change(req: ChangeRequest): Promise<ChangeOutcome> {
    return this.enqueue(req) as Promise<ChangeOutcome>;
  }

  private enqueue(req: Request): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.schedule();
    });
  }

  /** App shutdown: what is queued commits before the database and the writer thread close. */
  beforeApplicationShutdown(): Promise<void> {
    return this.drain();
  }

  /** Resolves once everything queued so far is committed (graceful shutdown). */
  drain(): Promise<void> {
    if (this.inFlight.size === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight.size >= this.store.batchesInFlight) return;
    this.scheduled = true;
    // setImmediate, not a microtask: every frame read in this I/O phase joins the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Starts what can start: one batch, or (PostgreSQL) two over disjoint channels. */
  private flush(): void {
    for (let batch = this.take(); batch.length > 0; batch = this.take()) void this.run(batch);
  }

  private async run(batch: Pending[]): Promise<void> {
    // Marked before the first await: the next take() must see this batch.
    this.inFlight.set(batch, new Set(batch.map((p) => p.req.channelId)));
    this.metrics.writeBatch.observe(batch.length);
    const timer = this.metrics.writeBatchSeconds.startTimer();
    const result = await this.store.writeBatch(batch.map((p) => p.req));
    timer();
    this.inFlight.delete(batch);
    // What queued during this commit goes to the database now, before this batch is answered and
    // fanned out: the writer thread commits it while this thread sends the acks and the frames.
    // (Answering first left the thread idle for that time, and the clients, waiting for their
    // acks, sent nothing new meanwhile either: ingest was the sum of the two, not the larger.)
    // The next batch's commit is reported in a later event, after this one's is handled here.
    if (this.queue.length > 0) this.flush();
    this.settle(batch, result);
    if (this.inFlight.size === 0 && this.queue.length === 0) for (const done of this.idle.splice(0)) done();
  }

  /**
   * The next batch, or none: the queue's requests in order, up to MAX_BATCH, none of a channel a
   * batch in flight holds (those keep their place, so a channel's requests still go in arrival
   * order). With one batch at a time (SQLite) that is simply the queue's head.
   *
   * With two (PostgreSQL) the two are kept about the same size. A second batch much smaller than
   * the one in flight would cost its transaction for a few messages, and stay small: while the big
   * one holds nearly every busy channel, only the rest can join the small one, and when the big one
   * ends, its channels' requests make the next big one. (Seen in the ingest benchmark: runs in that
   * state took up to half again more PostgreSQL CPU per message.) So a second batch starts only
   * with at least half as many requests as the one in flight, and a large queue with nothing in
   * flight goes out as two halves, by channel. A lone send next to a stuck batch of one or two
   * (a row lock another instance holds) still goes at once.
   */
  private take(): Pending[] {
    const slots = this.store.batchesInFlight;
    if (this.inFlight.size >= slots) return [];
    if (slots === 1) return this.queue.splice(0, MAX_BATCH);
    let other = 0;
    for (const b of this.inFlight.keys()) other = Math.max(other, b.length);
    // Too few queued to pass the size rule below: not worth a walk of the queue (this runs every
    // turn of the event loop that queues a send while one batch is in flight).
    if (this.queue.length * 2 < other) return [];
    const half = this.inFlight.size === 0 && this.queue.length >= SPLIT_AT ? this.firstHalf() : null;
    const batch: Pending[] = [];
    const left: Pending[] = [];
    for (const p of this.queue) {
      const id = p.req.channelId;
      if (batch.length < MAX_BATCH && !this.held(id) && (!half || half.has(id))) batch.push(p);
      else left.push(p);
    }
    if (batch.length === 0 || batch.length * 2 < other) return []; // waits for the one in flight
    this.queue = left;
    return batch;
  }

  /** A batch in flight holds this channel (two at most to ask). */
  private held(channelId: string): boolean {
    for (const channels of this.inFlight.values()) if (channels.has(channelId)) return true;
    return false;
  }

  /** The queue's channels, in order of first request, that hold about half its requests (one at least, not all). */
  private firstHalf(): Set<string> {
    const counts = new Map<string, number>();
    for (const p of this.queue) counts.set(p.req.channelId, (counts.get(p.req.channelId) ?? 0) + 1);
    const half = new Set<string>();
    let taken = 0;
    for (const [id, n] of counts) {
      if (half.size > 0 && (taken >= this.queue.length / 2 || half.size === counts.size - 1)) break;
      half.add(id);
      taken += n;
    }
    return half;
  }

  /** After a batch's commit: the post-commit hook (state and fan-out), then each sender's answer. */
  private settle(batch: Pending[], { outcomes, appended }: BatchResult): void {
    if (appended) queueMicrotask(() => this.outbox.onAppended()); // the delivery worker looks soon
    const created: MessageView[] = [];
    const updated: MessageView[] = [];
    let origin: Record<number, ChangeOrigin> | undefined;
    outcomes.forEach((o, i) => {
      if (o instanceof Error) return;
      if ('duplicate' in o) {
        if (!o.duplicate) created.push(o.message);
      } else if (o.changed) {
        updated.push(...changedMessages(o)); // a delete's replies too, their quote emptied
        const asker = (batch[i].req as ChangeRequest).asker;
        if (asker) (origin ??= {})[o.message.rev] = asker;
      }
    });
    if (created.length > 0 || updated.length > 0) {
      updated.sort((a, b) => a.rev - b.rev);
      try {
        this.onCommitted(created, updated, origin);
      } catch (err) {
        this.logger.error(`post-commit hook failed: ${(err as Error).stack}`);
      }
    }
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (o instanceof Error) p.reject(o);
      else p.resolve(o);
    });
  }
}
