import { Injectable, Logger } from '@nestjs/common';
import { v7 as uuidv7 } from 'uuid';
import { AppError } from '../common/app-error.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { webhookEvents } from '../webhooks/webhook-events.js';
import { WebhookOutbox } from '../webhooks/webhook-outbox.js';
import type { UserRef } from '../users/user.mapper.js';
import type { ChangeOrigin } from '../fanout/changes.js';
import type { MessageView, ReactionView } from './message.mapper.js';
import { Heads, MessageBatchOps, MessageStore, pairKey } from './message-store.js';

export interface SendRequest {
  channelId: string;
  sender: { id: string; username: string };
  text: string;
  clientMsgId: string;
  /** A message of the same channel this one answers: its snapshot is taken in the transaction. */
  replyToSeq?: number;
  /** Members named in the text (resolved by the service from the channel's members). */
  mentions?: UserRef[];
  /** A system message (server API): no membership needed, no read marker moved; `sender` is the system user. */
  system?: boolean;
}

export interface SendOutcome {
  message: MessageView;
  duplicate: boolean;
}

/** A change of a stored message: who asks, and what. Permissions are checked in the transaction. */
export type ChangeRequest = { channelId: string; seq: number; actor: UserRef; asker?: ChangeOrigin } & (
  | { op: 'edit'; text: string; mentions: UserRef[] }
  | { op: 'delete' }
  | { op: 'react'; emoji: string; add: boolean }
);

export interface ChangeOutcome {
  message: MessageView;
  /** False for a change that changes nothing (a retry, the same text, a reaction already there). */
  changed: boolean;
}

type Request = SendRequest | ChangeRequest;
type Outcome = SendOutcome | ChangeOutcome;

interface Pending {
  req: Request;
  resolve: (outcome: Outcome) => void;
  reject: (err: unknown) => void;
}

const isChange = (r: Request): r is ChangeRequest => 'op' in r;

/** Distinct emoji one message may carry. */
export const MAX_REACTION_EMOJI = 20;
/** Reactor ids listed per emoji (the count has them all). */
const REACTION_USERS_SHOWN = 50;
/** Characters of the answered message's text kept in a reply's snapshot. */
const REPLY_SNIPPET = 200;

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
 *
 * Changes of stored messages (edit, delete, reaction) queue here too, so they follow the same
 * discipline: serialized with the sends, committed before anyone hears of them, and each takes
 * the channel's next `rev` under the channel's row lock, so rev order is commit order. Every
 * channel a batch touches is locked once, in id order (sends' bump or a plain lock), before any
 * change is applied: two instances' batches never wait for each other in a cycle.
 */
@Injectable()
export class MessageWriter {
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
    const created: MessageView[] = [];
    const updated: MessageView[] = [];
    let origin: Record<number, ChangeOrigin> | undefined;
    outcomes.forEach((o, i) => {
      if (o instanceof Error) return;
      if ('duplicate' in o) {
        if (!o.duplicate) created.push(o.message);
      } else if (o.changed) {
        updated.push(o.message);
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
  private async writeSplitting(reqs: Request[], attempt = 0): Promise<(Outcome | Error)[]> {
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
      this.logger.error(`${isChange(reqs[0]) ? 'change' : 'send'} failed: ${(err as Error).message}`);
      return [new AppError('internal', isChange(reqs[0]) ? 'the change could not be stored' : 'the message could not be stored')];
    }
  }

  private async writeBatch(ops: MessageBatchOps, all: Request[]): Promise<(Outcome | AppError)[]> {
    const outcomes: (Outcome | AppError)[] = new Array(all.length);
    const sendIdx: number[] = [];
    const changeIdx: number[] = [];
    all.forEach((r, i) => (isChange(r) ? changeIdx : sendIdx).push(i));
    const reqs = all as SendRequest[]; // indexed by sendIdx only

    // 1. Idempotency: originals already stored, and repeats inside this very batch.
    const stored = sendIdx.length > 0 ? await ops.findExisting(sendIdx.map((i) => ({ senderId: reqs[i].sender.id, clientMsgId: reqs[i].clientMsgId }))) : new Map<string, MessageView>();
    const firstInBatch = new Map<string, number>();
    const repeats: [number, number][] = [];
    const byChannel = new Map<string, number[]>();
    for (const i of sendIdx) {
      const r = reqs[i];
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
    }

    // 2. Membership, from the database: the in-memory check that let the send in may not have
    //    heard yet of a leave on another instance (the bus is a round trip behind the commit).
    //    And the messages that replies answer (a reply to nothing, or to a tombstone, is refused).
    const members = byChannel.size > 0 ? await ops.findMembers([...byChannel].flatMap(([channelId, idx]) => idx.filter((i) => !reqs[i].system).map((i) => ({ channelId, userId: reqs[i].sender.id })))) : new Set<string>();
    const replies = new Map<number, MessageView>();
    for (const [channelId, idx] of byChannel) {
      const kept: number[] = [];
      for (const i of idx) {
        if (!reqs[i].system && !members.has(pairKey(channelId, reqs[i].sender.id))) {
          outcomes[i] = AppError.forbidden('not a member of this channel');
          continue;
        }
        const replyToSeq = reqs[i].replyToSeq;
        if (replyToSeq !== undefined) {
          const target = await ops.findMessage(channelId, replyToSeq);
          if (!target) {
            outcomes[i] = new AppError('not_found', `replyToSeq: no message ${replyToSeq} in this channel`);
            continue;
          }
          if (target.deleted) {
            outcomes[i] = new AppError('conflict', `replyToSeq: message ${replyToSeq} was deleted`);
            continue;
          }
          replies.set(i, target);
        }
        kept.push(i);
      }
      if (kept.length > 0) byChannel.set(channelId, kept);
      else byChannel.delete(channelId);
    }

    // 3. Sequence numbers and revs, channel by channel in a fixed order (the lock order across
    //    instances); a channel that only has changes is locked in the same pass.
    const changeChannels = new Set(changeIdx.map((i) => (all[i] as ChangeRequest).channelId));
    const heads = new Map<string, Heads>();
    const now = Date.now();
    const createdAt = new Date(now).toISOString();
    const created: MessageView[] = [];
    for (const channelId of [...new Set([...byChannel.keys(), ...changeChannels])].sort()) {
      const idx = byChannel.get(channelId);
      if (!idx) {
        const locked = await ops.lockChannel(channelId);
        if (locked) heads.set(channelId, locked);
        continue;
      }
      const head = await ops.bumpHead(channelId, idx.length);
      // No row: gone, or archived since the in-memory check let these sends in (another
      // instance's archive, a bus round trip ago). The batch splits down to these sends.
      if (head === null) throw (await ops.lockChannel(channelId)) ? AppError.archived() : AppError.notFound('channel');
      heads.set(channelId, head);
      idx.forEach((i, k) => {
        const r = reqs[i];
        const target = replies.get(i);
        const message: MessageView = {
          // Time-ordered ids: new rows land at the end of the primary-key index, not all over it.
          id: uuidv7(),
          channelId,
          seq: head.headSeq - idx.length + 1 + k,
          rev: head.headRev - idx.length + 1 + k,
          kind: r.system ? 'system' : 'user',
          sender: r.system ? null : { id: r.sender.id, username: r.sender.username },
          text: r.text,
          clientMsgId: r.clientMsgId,
          createdAt,
          deleted: false,
          mentions: r.mentions ?? [],
          reactions: [],
        };
        if (target) message.replyTo = { seq: target.seq, sender: target.sender, text: target.text.slice(0, REPLY_SNIPPET) };
        outcomes[i] = { message, duplicate: false };
        created.push(message);
      });
    }

    // 4. The rows, in multi-row INSERTs, and the mentions (rare: most messages have none).
    if (created.length > 0) await ops.insert(created, now);
    for (const m of created) if (m.mentions.length > 0) await ops.setMentions(m.channelId, m.seq, m.mentions.map((u) => u.id), false);

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
      const original = outcomes[first] as SendOutcome | AppError;
      outcomes[i] = original instanceof AppError ? original : { message: original.message, duplicate: true };
    }

    // 6. Changes, in arrival order, each on the message as the previous ones left it.
    const revs = new Map<string, number>();
    for (const i of changeIdx) {
      const r = all[i] as ChangeRequest;
      const head = heads.get(r.channelId);
      if (!head || head.archived) {
        outcomes[i] = head ? AppError.archived() : AppError.notFound('channel');
        continue;
      }
      try {
        outcomes[i] = await this.applyChange(ops, r, () => {
          const rev = (revs.get(r.channelId) ?? head.headRev) + 1;
          revs.set(r.channelId, rev);
          return rev;
        }, now);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        outcomes[i] = err;
      }
    }
    for (const [channelId, rev] of revs) await ops.setHeadRev(channelId, rev);

    // 7. Webhooks (none when WEBHOOK_URL is unset): in this transaction, so none is lost or extra,
    //    and last, as the outbox's per-channel lock asks; new messages first, then the changes in rev order.
    const changed = changeIdx.map((i) => outcomes[i]).filter((o): o is ChangeOutcome => !(o instanceof AppError) && (o as ChangeOutcome).changed);
    const outboxRows = this.outbox.rows([...created.map(webhookEvents.messageCreated), ...changed.map((o) => webhookEvents.messageUpdated(o.message))]);
    if (outboxRows.length > 0) await ops.appendOutbox(outboxRows);
    return outcomes;
  }

  /**
   * One change, checked against the database (the sender, the role, the tombstone) under the
   * channel's lock. Nothing changes, and no rev is taken, when the change is already there: a
   * retried edit, delete or reaction answers with the message as it is.
   */
  private async applyChange(ops: MessageBatchOps, r: ChangeRequest, nextRev: () => number, now: number): Promise<ChangeOutcome> {
    const role = await ops.roleOf(r.channelId, r.actor.id);
    if (role === null) throw AppError.forbidden('not a member of this channel');
    const current = await ops.findMessage(r.channelId, r.seq);
    if (!current) throw AppError.notFound('message');
    const unchanged = { message: current, changed: false };
    if (r.op === 'delete') {
      if (current.sender?.id !== r.actor.id && role !== 'owner' && role !== 'admin') {
        throw AppError.forbidden("only the sender or the channel's owner or admins can delete a message");
      }
      if (current.deleted) return unchanged;
      const message: MessageView = { ...current, rev: nextRev(), text: '', deleted: true, mentions: [], reactions: [] };
      delete message.replyTo;
      delete message.editedAt;
      await ops.update(message, now);
      await ops.setMentions(r.channelId, r.seq, [], true);
      await ops.clearReactions(current.id);
      return { message, changed: true };
    }
    if (current.deleted) throw new AppError('conflict', 'the message was deleted');
    if (r.op === 'edit') {
      if (current.sender?.id !== r.actor.id) throw AppError.forbidden('only the sender can edit a message');
      if (current.text === r.text) return unchanged;
      const message: MessageView = { ...current, rev: nextRev(), text: r.text, editedAt: new Date(now).toISOString(), mentions: r.mentions };
      await ops.update(message, now);
      await ops.setMentions(r.channelId, r.seq, r.mentions.map((u) => u.id), true);
      return { message, changed: true };
    }
    if (r.add) {
      const emojis = new Set(current.reactions.map((x) => x.emoji));
      if (!emojis.has(r.emoji) && emojis.size >= MAX_REACTION_EMOJI) {
        throw new AppError('conflict', `a message carries at most ${MAX_REACTION_EMOJI} different reactions`);
      }
      if (!(await ops.addReaction(current.id, r.actor.id, r.emoji, now))) return unchanged;
    } else if (!(await ops.removeReaction(current.id, r.actor.id, r.emoji))) {
      return unchanged;
    }
    const message: MessageView = { ...current, rev: nextRev(), reactions: summarize(await ops.reactionsOf(current.id)) };
    await ops.update(message, now);
    return { message, changed: true };
  }
}

/** The rendered reactions: per emoji in order of first use, the count and the first reactors. */
function summarize(rows: { emoji: string; user_id: string }[]): ReactionView[] {
  const byEmoji = new Map<string, ReactionView>();
  for (const { emoji, user_id } of rows) {
    let r = byEmoji.get(emoji);
    if (!r) byEmoji.set(emoji, (r = { emoji, count: 0, userIds: [] }));
    r.count++;
    if (r.userIds.length < REACTION_USERS_SHOWN) r.userIds.push(user_id);
  }
  return [...byEmoji.values()];
}
