import { AppError } from '../common/app-error.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { toOutboxRow, webhookEvents, type OutboxRow, type WebhookEvent } from '../webhooks/webhook-events.js';
import type { UserRef } from '../users/user.mapper.js';
import type { ChangeOrigin } from '../fanout/changes.js';
import { uuid7 } from '../common/uuid7.js';
import type { MessageView, ReactionView, ReplyRef } from './message.mapper.js';

/*
 * The message write batch as plain functions over MessageBatchOps: no Nest, no TypeORM, no
 * services. The same code runs on the main thread (PostgreSQL through a TypeORM transaction;
 * SQLite `:memory:`, which a worker thread cannot share) and inside the SQLite writer thread
 * (sqlite-writer.worker.ts), so what it needs from services comes in as plain data
 * (BatchOptions) and what it asks of the database goes through MessageBatchOps.
 */

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
  /**
   * A delete: the replies that quoted the deleted message, their quote emptied (`replyTo.deleted`),
   * each a change of its own with a rev after the delete's (so a resume gets them too).
   */
  quotes?: MessageView[];
}

/** The statements of a write batch, run inside one transaction (see writeBatch). */
export interface MessageBatchOps {
  /** Stored messages of these (senderId, clientMsgId) pairs, keyed `${senderId}\u0000${clientMsgId}`. */
  findExisting(pairs: { senderId: string; clientMsgId: string }[]): Promise<Map<string, MessageView>> | Map<string, MessageView>;
  /** Which of these (channelId, userId) pairs are memberships, keyed `${channelId}\u0000${userId}`. */
  findMembers(pairs: { channelId: string; userId: string }[]): Promise<Set<string>> | Set<string>;
  /**
   * The batch's channels, taken in the order given (sorted by id: the lock order across
   * instances): each one with n > 0 gets n added to head_seq and head_rev, each one with n = 0 (a
   * channel with changes only) is locked and read (PostgreSQL; SQLite's writer is alone anyway).
   * The map holds every channel that exists: a bumped one's new heads, the others' as they are,
   * and an archived one with `archived` set (never bumped).
   */
  takeHeads(channels: [channelId: string, n: number][]): Promise<Map<string, Heads>> | Map<string, Heads>;
  setHeadRev(channelId: string, rev: number): Promise<void> | void;
  insert(messages: MessageView[], createdAtMs: number): Promise<void> | void;
  /** Moves each member's read marker up to its seq (never down). */
  advanceMarkers(markers: ReadMarker[]): Promise<void> | void;
  findMessage(channelId: string, seq: number): Promise<MessageView | null> | MessageView | null;
  /** The channel's messages, not deleted, that answer message `seq` (by the partial index on reply_to_seq), in no order. */
  repliesTo(channelId: string, seq: number): Promise<MessageView[]> | MessageView[];
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
  /** Webhook events of the batch into the outbox (never called with none). */
  appendOutbox(rows: OutboxRow[]): Promise<void> | void;
}

export interface Heads {
  headSeq: number;
  headRev: number;
  /** The channel is archived (read-only): its heads were read, not bumped. */
  archived?: boolean;
}

export interface ReadMarker {
  channelId: string;
  userId: string;
  seq: number;
}

/** What the transaction makes of a new message; the rest of it is the request's. */
export interface Made {
  id: string;
  seq: number;
  rev: number;
  createdAt: string;
  replyTo?: ReplyRef;
}

/**
 * A new message: the request's fields and what the transaction made. The one place a new
 * MessageView is put together, in the batch and on the main thread's side of the writer thread
 * (which gets only `Made` back: writer-wire.ts), so both give the same object, keys in order.
 */
export function newMessage(r: SendRequest, made: Made): MessageView {
  const message: MessageView = {
    id: made.id,
    channelId: r.channelId,
    seq: made.seq,
    rev: made.rev,
    kind: r.system ? 'system' : 'user',
    sender: r.system ? null : { id: r.sender.id, username: r.sender.username },
    text: r.text,
    clientMsgId: r.clientMsgId,
    createdAt: made.createdAt,
    deleted: false,
    mentions: r.mentions ?? [],
    reactions: [],
  };
  if (made.replyTo) message.replyTo = made.replyTo;
  return message;
}

export const pairKey = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

export type Request = SendRequest | ChangeRequest;
export type Outcome = SendOutcome | ChangeOutcome;

/** What the batch needs from the services, as plain data (it crosses to the writer thread). */
export interface BatchOptions {
  /** WEBHOOK_URL is set: the batch appends its events to the outbox (WebhookOutbox.rows). */
  webhooks: boolean;
  /**
   * The batch runs again after its writer thread died, maybe after its COMMIT (MessageStore.
   * writeBatch): a delete found done also brings back the quotes it emptied, so that they are
   * announced with it (a repeat is dropped by ChannelSequencer, as the rerun's other repeats are).
   */
  rerun?: boolean;
}

/** Where the batch logs: Nest's Logger (in the writer thread, through the main thread's: WorkerLogLine). */
export interface BatchLog {
  warn(message: string): void;
  error(message: string): void;
}

/** Runs `work` in one transaction: commits when it resolves, rolls back when it throws. */
export type RunInTransaction = <T>(work: (ops: MessageBatchOps) => Promise<T>) => Promise<T>;

/** Counted along a batch: transactions tried (the split costs), and whether an outbox row was written. */
export interface BatchStats {
  transactions: number;
  appended: boolean;
}

/** The outbox rows of these events. */
function toOutboxRows(events: WebhookEvent[]): OutboxRow[] {
  const now = Date.now();
  return events.map((e) => toOutboxRow(e, now));
}

/** The messages a change changed, in rev order: the message, then (a delete) the replies whose quote it emptied. */
export const changedMessages = (o: ChangeOutcome): MessageView[] => (o.quotes ? [o.message, ...o.quotes] : [o.message]);

export const isChange = (r: Request): r is ChangeRequest => 'op' in r;

/** Distinct emoji one message may carry. */
export const MAX_REACTION_EMOJI = 20;
/** Reactor ids listed per emoji (the count has them all). */
const REACTION_USERS_SHOWN = 50;
/** Characters of the answered message's text kept in a reply's snapshot. */
const REPLY_SNIPPET = 200;

/** Sends per transaction; more wait for the next one. */
export const MAX_BATCH = 2000;

/**
 * One transaction for the whole batch; if it fails, each half gets its own, and so on down to
 * the one send at fault, which alone gets the error. A bad send thus costs its neighbours a few
 * transactions (log2 of the batch), not one each; halves run in order, so seqs stay in commit
 * order. A unique violation (the same clientMsgId committed by another instance meanwhile) is
 * retried once: the second look finds the original. Every failure comes back as an AppError.
 */
export async function writeSplitting(
  transaction: RunInTransaction,
  reqs: Request[],
  opts: BatchOptions,
  log: BatchLog,
  stats: BatchStats,
  attempt = 0,
): Promise<(Outcome | AppError)[]> {
  try {
    stats.transactions++;
    return await transaction((ops) => writeBatch(ops, reqs, opts, stats));
  } catch (err) {
    if (reqs.length > 1) {
      if (attempt === 0) log.warn(`batch of ${reqs.length} failed (${(err as Error).message}); splitting it`);
      const half = Math.ceil(reqs.length / 2);
      return [
        ...(await writeSplitting(transaction, reqs.slice(0, half), opts, log, stats, 1)),
        ...(await writeSplitting(transaction, reqs.slice(half), opts, log, stats, 1)),
      ];
    }
    if (isUniqueViolation(err) && attempt < 2) return writeSplitting(transaction, reqs, opts, log, stats, 2);
    if (isUniqueViolation(err)) return [new AppError('conflict', 'the message could not be stored; retry with the same clientMsgId')];
    if (err instanceof AppError) return [err];
    log.error(`${isChange(reqs[0]) ? 'change' : 'send'} failed: ${(err as Error).message}`);
    return [new AppError('internal', isChange(reqs[0]) ? 'the change could not be stored' : 'the message could not be stored')];
  }
}

export async function writeBatch(ops: MessageBatchOps, all: Request[], opts: BatchOptions, stats?: BatchStats): Promise<(Outcome | AppError)[]> {
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
  const now = Date.now();
  const createdAt = new Date(now).toISOString();
  const created: MessageView[] = [];
  const order = [...new Set([...byChannel.keys(), ...changeChannels])].sort();
  const heads = await ops.takeHeads(order.map((channelId) => [channelId, byChannel.get(channelId)?.length ?? 0]));
  for (const channelId of order) {
    const idx = byChannel.get(channelId);
    if (!idx) continue; // changes only: step 6 reads its heads
    const head = heads.get(channelId);
    // Gone, or archived since the in-memory check let these sends in (another instance's
    // archive, a bus round trip ago). The batch splits down to these sends.
    if (!head || head.archived) throw head ? AppError.archived() : AppError.notFound('channel');
    idx.forEach((i, k) => {
      const target = replies.get(i);
      const message = newMessage(reqs[i], {
        // Time-ordered ids: new rows land at the end of the primary-key index, not all over it.
        id: uuid7(),
        seq: head.headSeq - idx.length + 1 + k,
        rev: head.headRev - idx.length + 1 + k,
        createdAt,
        replyTo: target && { seq: target.seq, sender: target.sender, text: target.text.slice(0, REPLY_SNIPPET) },
      });
      outcomes[i] = { message, duplicate: false };
      created.push(message);
    });
  }

  // 4. The rows, in multi-row INSERTs, and the mentions (rare: most messages have none).
  if (created.length > 0) await ops.insert(created, now);
  for (const m of created) if (m.mentions.length > 0) await ops.setMentions(m.channelId, m.seq, m.mentions.map((u) => u.id), false);

  // 5. Sending reads up to one's own message: that is what makes unread = head - lastRead exact.
  const markers = new Map<string, ReadMarker>();
  for (const m of created) {
    if (!m.sender) continue; // a system message reads nobody's marker forward
    const key = pairKey(m.channelId, m.sender.id);
    const cur = markers.get(key);
    if (!cur || cur.seq < m.seq) markers.set(key, { channelId: m.channelId, userId: m.sender.id, seq: m.seq });
  }
  if (markers.size > 0) await ops.advanceMarkers([...markers.values()]);

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
      outcomes[i] = await applyChange(ops, r, opts, () => {
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

  // 7. Webhooks: in this transaction, so none is lost or extra, and last, as the outbox's
  //    per-channel lock asks; new messages first, then the changes in rev order. With WEBHOOK_URL
  //    unset nothing of it is built (the send path pays nothing).
  if (opts.webhooks) {
    const changed = changeIdx.map((i) => outcomes[i]).filter((o): o is ChangeOutcome => !(o instanceof AppError) && (o as ChangeOutcome).changed);
    const events = [...created.map(webhookEvents.messageCreated), ...changed.flatMap(changedMessages).map(webhookEvents.messageUpdated)];
    if (events.length > 0) {
      await ops.appendOutbox(toOutboxRows(events));
      if (stats) stats.appended = true; // the delivery worker is told after the commit
    }
  }
  return outcomes;
}

/**
 * One change, checked against the database (the sender, the role, the tombstone) under the
 * channel's lock. Nothing changes, and no rev is taken, when the change is already there: a
 * retried edit, delete or reaction answers with the message as it is.
 */
async function applyChange(ops: MessageBatchOps, r: ChangeRequest, opts: BatchOptions, nextRev: () => number, now: number): Promise<ChangeOutcome> {
  const role = await ops.roleOf(r.channelId, r.actor.id);
  if (role === null) throw AppError.forbidden('not a member of this channel');
  const current = await ops.findMessage(r.channelId, r.seq);
  if (!current) throw AppError.notFound('message');
  const unchanged = { message: current, changed: false };
  if (r.op === 'delete') {
    if (current.sender?.id !== r.actor.id && role !== 'owner' && role !== 'admin') {
      throw AppError.forbidden("only the sender or the channel's owner or admins can delete a message");
    }
    if (current.deleted) {
      if (!opts.rerun) return unchanged;
      const emptied = (await repliesInOrder(ops, r)).filter((m) => m.replyTo?.deleted);
      return emptied.length > 0 ? { ...unchanged, quotes: emptied } : unchanged;
    }
    const message: MessageView = { ...current, rev: nextRev(), text: '', deleted: true, mentions: [], reactions: [] };
    delete message.replyTo;
    delete message.editedAt;
    await ops.update(message, now);
    await ops.setMentions(r.channelId, r.seq, [], true);
    await ops.clearReactions(current.id);
    // Its text goes from the replies' quotes too: a deleted message must not live on in them.
    const quotes: MessageView[] = [];
    for (const reply of await repliesInOrder(ops, r)) {
      const quote: MessageView = { ...reply, rev: nextRev(), replyTo: { seq: r.seq, sender: reply.replyTo?.sender ?? null, text: '', deleted: true } };
      await ops.update(quote, now);
      quotes.push(quote);
    }
    return quotes.length > 0 ? { message, changed: true, quotes } : { message, changed: true };
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

/** The replies to the changed message, in seq order (the query leaves the order: see REPLIES_SQL). */
async function repliesInOrder(ops: MessageBatchOps, r: ChangeRequest): Promise<MessageView[]> {
  return (await ops.repliesTo(r.channelId, r.seq)).sort((x, y) => x.seq - y.seq);
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
