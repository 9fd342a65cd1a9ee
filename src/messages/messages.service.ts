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
import { MessageWriter, SendOutcome } from './message-writer.js';

export interface SendInput {
  channelId?: string;
  /** A username: the DM with that user, created on first use. */
  to?: string;
  text: string;
  clientMsgId: string;
}

export interface SyncPage extends HistoryPage {
  headSeq: number;
}

/** Messages per `sync.result` page; the client repeats while hasMore. */
export const SYNC_PAGE = 200;

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
    this.messageWriter.onCommitted = (created) => this.afterCommit(created);
  }

  /**
   * Persist, then answer: the promise resolves only after the row is committed. Posting in a
   * conversation accepts it (a DM someone opened with you, a channel someone added you to).
   */
  async send(caller: AuthUser, input: SendInput): Promise<SendOutcome> {
    if ((input.channelId === undefined) === (input.to === undefined)) {
      throw new AppError('invalid_payload', 'give exactly one of channelId or to', { fields: { channelId: ['channelId or to is required'] } });
    }
    const state = input.to !== undefined
      ? (await this.channels.getOrCreateDm(caller, input.to)).state
      : await this.channels.requireMember(input.channelId!, caller.id);
    await this.channels.assertCanPost(state, caller.id);
    await this.channels.acceptPending(state, caller.id, { quiet: true });
    try {
      return await this.messageWriter.write({ channelId: state.id, sender: caller, text: input.text, clientMsgId: input.clientMsgId });
    } catch (err) {
      // The writer found no membership: a user deleted since their token was made has none
      // either, and is told 401 (the token outlived its user), not 403. Only on this rare path.
      if (err instanceof AppError && err.code === 'forbidden' && !(await this.users.findById(caller.id))) throw UsersService.callerGone();
      throw err;
    }
  }

  async history(caller: AuthUser, channelId: string, q: { before?: number; after?: number; limit: number }): Promise<HistoryPage> {
    await this.channels.requireMember(channelId, caller.id);
    return this.page(channelId, q);
  }

  /** Resume: everything after lastSeq, oldest first, one page at a time. */
  async sync(caller: AuthUser, channelId: string, lastSeq: number): Promise<SyncPage> {
    const state = await this.channels.requireMember(channelId, caller.id);
    const headSeq = state.headSeq;
    const page = await this.page(channelId, { after: lastSeq, limit: SYNC_PAGE });
    return { ...page, headSeq };
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
  private afterCommit(created: MessageView[]): void {
    this.metrics.messagesSent.inc(created.length);
    this.bus.publish('messages.created', { messages: created });
  }
}
