import { Injectable, OnModuleInit } from '@nestjs/common';
import type { AuthUser } from '../auth/auth.service.js';
import { ChannelsService } from '../channels/channels.service.js';
import type { ConversationView } from '../channels/conversation.mapper.js';
import { AppError } from '../common/app-error.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { UsersService } from '../users/users.service.js';
import { Membership } from '../channels/membership.entity.js';
import type { HistoryPage } from './dto/message.dto.js';
import { MessageView, rowToMessage } from './message.mapper.js';
import { MessageStore } from './message-store.js';
import { ChangeOutcome, ChangeRequest, MessageWriter, SendOutcome } from './message-writer.js';
import type { ChangeOrigin as ChangeAsker } from '../fanout/changes.js';
import { parseMentions } from './mentions.js';
import type { ChannelState } from '../channels/channel-state.store.js';
import type { SearchPage } from './dto/message.dto.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;


export interface SendInput {
  channelId?: string;
  /** A username: the DM with that user, created on first use. */
  to?: string;
  text: string;
  clientMsgId: string;
  replyToSeq?: number;
}

export interface SyncPage extends HistoryPage {
  headSeq: number;
  /** v1.1 only (a sync that gave a rev): messages at or below the given seq changed since the given rev. */
  changes?: MessageView[];
  headRev?: number;
}

export type { ChangeOrigin as ChangeAsker } from '../fanout/changes.js';

/** A send names exactly one of channelId and to. */
const oneTarget = (input: SendInput): boolean => (input.channelId === undefined) !== (input.to === undefined);

/** Messages per `sync.result` page; the client repeats while hasMore. */
export const SYNC_PAGE = 200;
/** Words of a search query that count. */
const MAX_SEARCH_TERMS = 8;

@Injectable()
export class MessagesService implements OnModuleInit {
  constructor(
    private readonly writer: DatabaseWriter,
    private readonly messageStore: MessageStore,
    private readonly messageWriter: MessageWriter,
    private readonly channels: ChannelsService,
    private readonly bus: FanoutBus,
    private readonly metrics: MetricsService,
    private readonly users: UsersService,
  ) {}

  onModuleInit(): void {
    this.messageWriter.onCommitted = (created, updated, origin) => this.afterCommit(created, updated, origin);
  }

  /**
   * Persist, then answer: the promise resolves only after the row is committed. Posting in a
   * conversation accepts it (a DM someone opened with you, a channel someone added you to).
   */
  send(caller: AuthUser, input: SendInput): Promise<SendOutcome> {
    // Where the conversation and the right to post are known without an await (every send after
    // a conversation's first, see ChannelsService.postableNow): straight to the writer.
    const state = oneTarget(input) ? this.channels.postableNow(caller, input) : undefined;
    return state ? this.write(caller, input, state) : this.sendChecked(caller, input);
  }

  /** `send`'s general path: finds or makes the conversation, checks, accepts, then writes. */
  private async sendChecked(caller: AuthUser, input: SendInput): Promise<SendOutcome> {
    if (!oneTarget(input)) {
      // Both given: the frame's own validation passes each field alone (each is a valid choice).
      const both = input.channelId !== undefined;
      const why = both ? 'give channelId or to, not both' : 'channelId or to is required';
      throw new AppError('invalid_payload', `${both ? 'to' : 'channelId'}: ${why}`, { fields: { [both ? 'to' : 'channelId']: [why] } });
    }
    const state = input.to !== undefined
      ? (await this.channels.getOrCreateDm(caller, input.to)).state
      : await this.channels.requireMember(input.channelId!, caller.id);
    await this.channels.assertCanPost(state, caller.id);
    await this.channels.acceptPending(state, caller.id, { quiet: true });
    return this.write(caller, input, state);
  }

  /** Persist, then answer (the writer's promise resolves after the commit). */
  private write(caller: AuthUser, input: SendInput, state: ChannelState): Promise<SendOutcome> {
    const written = this.messageWriter.write({
      channelId: state.id,
      sender: { id: caller.id, username: caller.username },
      text: input.text,
      clientMsgId: input.clientMsgId,
      replyToSeq: input.replyToSeq,
      mentions: parseMentions(input.text, state),
    });
    return written.catch(async (err: unknown) => {
      // The writer found no membership: a user deleted since their token was made has none
      // either, and is told 401 (the token outlived its user), not 403. Only on this rare path.
      if (err instanceof AppError && err.code === 'forbidden' && !(await this.users.findById(caller.id))) throw UsersService.callerGone();
      throw err;
    });
  }

  async history(caller: AuthUser, channelId: string, q: { before?: number; after?: number; limit: number }): Promise<HistoryPage> {
    await this.channels.requireMember(channelId, caller.id);
    return this.page(channelId, q);
  }

  /**
   * Resume: everything after `seq`, oldest first, one page at a time; with a `rev` (v1.1) also
   * the current state of the messages at or below `seq` that changed after `rev`, by rev. The
   * changes come first: while they fill a page, the page has no new messages, so a client that
   * takes the highest seq and the highest rev it got as its next cursor misses nothing.
   */
  async sync(caller: AuthUser, channelId: string, since: { seq: number; rev?: number }, limit = SYNC_PAGE): Promise<SyncPage> {
    const state = await this.channels.requireMember(channelId, caller.id);
    const { headSeq, headRev } = state;
    const rows = await this.messageStore.resumePage(channelId, { seq: since.seq, rev: since.rev ?? null, limit });
    if (since.rev === undefined) {
      return { channelId, messages: rows.messages.slice(0, limit).map(rowToMessage), hasMore: rows.messages.length > limit, headSeq };
    }
    const changes = rows.changes.slice(0, limit).map(rowToMessage);
    if (rows.changes.length > limit) return { channelId, messages: [], changes, hasMore: true, headSeq, headRev };
    const messages = rows.messages.slice(0, limit).map(rowToMessage);
    return { channelId, messages, changes, hasMore: rows.messages.length > limit, headSeq, headRev };
  }

  /** Edits the caller's own message; mentions are read again from the new text. */
  edit(caller: AuthUser, channelId: string, seq: number, text: string, asker?: ChangeAsker): Promise<ChangeOutcome> {
    return this.change(caller, channelId, asker, (state) => ({ op: 'edit', seq, text, mentions: parseMentions(text, state) }));
  }

  /** Leaves a tombstone: the sender, or the channel's owner or an admin. */
  remove(caller: AuthUser, channelId: string, seq: number, asker?: ChangeAsker): Promise<ChangeOutcome> {
    return this.change(caller, channelId, asker, () => ({ op: 'delete', seq }));
  }

  react(caller: AuthUser, channelId: string, seq: number, emoji: string, add: boolean, asker?: ChangeAsker): Promise<ChangeOutcome> {
    return this.change(caller, channelId, asker, () => ({ op: 'react', seq, emoji, add }));
  }

  /**
   * A change goes through the writer like a send (serialized with them, committed before it is
   * told); the writer checks the sender, the role and the tombstone in the database. In a DM
   * with a block nothing changes, as nothing is sent.
   */
  private async change(
    caller: AuthUser,
    channelId: string,
    asker: ChangeAsker | undefined,
    what: (state: ChannelState) => DistributiveOmit<ChangeRequest, 'channelId' | 'actor'>,
  ): Promise<ChangeOutcome> {
    const state = await this.channels.requireMember(channelId, caller.id);
    await this.channels.assertCanPost(state, caller.id);
    return this.messageWriter.change({ ...what(state), channelId, actor: { id: caller.id, username: caller.username }, asker } as ChangeRequest);
  }

  /**
   * Full-text search over the caller's channels (their memberships, read in the same query: a
   * channel they left, or a private one they are not in, never shows), newest first. The query is
   * reduced to words (letters and digits), each a prefix, all required: no operator of either
   * database's query language gets through, so no query can fail or inject.
   */
  async search(caller: AuthUser, q: { q: string; channelId?: string; limit: number; before?: string }): Promise<SearchPage> {
    const terms = (q.q.normalize('NFKC').toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, MAX_SEARCH_TERMS).map((t) => t.slice(0, 64));
    if (terms.length === 0) {
      throw new AppError('invalid_payload', 'q must contain a word (letters or digits)', { fields: { q: ['q must contain a word (letters or digits)'] } });
    }
    if (q.channelId !== undefined) await this.channels.requireMember(q.channelId, caller.id);
    await this.messageStore.indexPending(); // every message stored before the search is found
    const rows = await this.messageStore.search({ userId: caller.id, terms, channelId: q.channelId, before: q.before?.toLowerCase(), limit: q.limit });
    const hits = rows.slice(0, q.limit).map((r) => ({ message: rowToMessage(r) }));
    const nextCursor = rows.length > q.limit ? hits[hits.length - 1].message.id : null;
    return { hits, nextCursor };
  }

  /**
   * Moves the caller's read marker forward (never back), clamped to the channel's head. Reading a
   * channel accepts it; reading a DM does not (a request can be read before deciding).
   */
  async markRead(caller: AuthUser, channelId: string, seq: number, origin?: string): Promise<ConversationView> {
    const state = await this.channels.requireMember(channelId, caller.id);
    const target = Math.min(seq, state.headSeq);
    const member = state.members.get(caller.id)!;
    if (state.kind === 'channel') await this.channels.acceptPending(state, caller.id, { origin, quiet: target > member.lastReadSeq });
    if (target > member.lastReadSeq) {
      await this.writer.transaction((em) =>
        em
          .createQueryBuilder()
          .update(Membership)
          .set({ lastReadSeq: target })
          .where('channelId = :channelId AND userId = :userId AND lastReadSeq < :target', { channelId, userId: caller.id, target })
          .execute(),
      );
      this.bus.publish('read.moved', { channelId, userId: caller.id, seq: target, origin });
    }
    return this.channels.viewFor(state, caller.id);
  }

  private async page(channelId: string, q: { before?: number; after?: number; limit: number }): Promise<HistoryPage> {
    const rows = await this.messageStore.page(channelId, q);
    const hasMore = rows.length > q.limit;
    const messages = rows.slice(0, q.limit).map(rowToMessage);
    if (q.after === undefined) messages.reverse(); // read backwards, returned ascending
    return { channelId, messages, hasMore };
  }

  /**
   * Runs synchronously right after a batch commits: the bus applies it to the in-memory state at
   * once (so a read that follows sees the new head) and tells the other instances; the frames go
   * out on the next turn of the event loop, after the senders' acks, as the contract orders them.
   */
  private afterCommit(created: MessageView[], updated: MessageView[], origin?: Record<number, ChangeAsker>): void {
    if (created.length > 0) {
      this.metrics.messagesSent.inc(created.length);
      this.bus.publish('messages.created', { messages: created });
      this.messageStore.scheduleIndexing();
    }
    if (updated.length > 0) this.bus.publish('messages.updated', { messages: updated, origin });
  }
}
