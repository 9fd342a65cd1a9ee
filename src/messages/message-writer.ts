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
 */
@Injectable()
export class MessageWriter implements BeforeApplicationShutdown {
  private readonly logger = new Logger(MessageWriter.name);
  private queue: Pending[] = [];
  private scheduled = false;
  private running = false;
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
    this.metrics.writeBatch.observe(batch.length);
    const timer = this.metrics.writeBatchSeconds.startTimer();
    const result = await this.store.writeBatch(batch.map((p) => p.req));
    timer();
    this.running = false;
    // What queued during this commit goes to the database now, before this batch is answered and
    // fanned out: the writer thread commits it while this thread sends the acks and the frames.
    // (Answering first left the thread idle for that time, and the clients, waiting for their
    // acks, sent nothing new meanwhile either: ingest was the sum of the two, not the larger.)
    // The next batch's commit is reported in a later event, after this one's is handled here.
    if (this.queue.length > 0) void this.flush();
    this.settle(batch, result);
    if (!this.running && this.queue.length === 0) for (const done of this.idle.splice(0)) done();
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
