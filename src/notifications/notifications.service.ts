import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource } from 'typeorm';
import { ChannelsService } from '../channels/channels.service.js';
import { ChannelStateStore, unreadCount } from '../channels/channel-state.store.js';
import { Membership } from '../channels/membership.entity.js';
import { AppConfig } from '../config/app-config.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { RedisClients } from '../fanout/redis-clients.js';
import type { MessageView } from '../messages/message.mapper.js';
import { PresenceService } from '../presence/presence.service.js';
import type { UserRef } from '../users/user.mapper.js';
import { WebhookEvent } from '../webhooks/webhook-events.js';
import { WebhookOutbox } from '../webhooks/webhook-outbox.js';
import type { MuteState } from './dto/mute.dto.js';

/**
 * MENTIONS HOOK POINT (#9): the users a message mentions. Until messages carry `mentions`
 * ([{id, username}], members only), nobody; once they do, a mentioned member is notified even
 * while connected (still not when they muted the channel).
 */
export function mentionedUserIds(message: MessageView): string[] {
  const mentions = (message as MessageView & { mentions?: { id: string }[] }).mentions;
  return Array.isArray(mentions) ? mentions.map((m) => m.id) : [];
}

type Reason = 'offline' | 'mention';

/** The sender's id; null for a system message (`sender: null`, coming with the server API). */
const senderOf = (m: MessageView): string | null => (m as { sender: { id: string } | null }).sender?.id ?? null;

/**
 * `notification.needed`, the mobile-push hook: a webhook event for each member a new message
 * reaches who has no open connection on any instance (PresenceService knows the cluster's online
 * users; a user in PRESENCE_GRACE_MS after their last connection counts as connected: a reload
 * or a network switch), or whom it mentions. Never to the sender, never in a muted channel, and
 * folded: at most one per user and channel per NOTIFICATION_INTERVAL_MS (cluster-wide with
 * Redis), carrying the newest message and the unread count, so "3 new messages" needs no more.
 *
 * Made after the commit, by the instance that committed the batch, and appended to the outbox in
 * a transaction of its own, not in the send's: the send path (a hot one) then pays nothing for it,
 * and a push is advice, not state; a crash in the instant between the two loses a push, never a
 * message or any other event. Once in the outbox, it is delivered like every event (signed,
 * retried, ordered after the channel's message.created).
 */
@Injectable()
export class NotificationsService implements OnModuleInit {
  private readonly logger = new Logger('Notifications');
  /** `${userId} ${channelId}` → until when this instance holds back the next one. */
  private readonly folded = new LRUCache<string, number>({ max: 100_000 });
  private readonly intervalMs: number;

  constructor(
    private readonly config: AppConfig,
    private readonly bus: FanoutBus,
    private readonly store: ChannelStateStore,
    private readonly presence: PresenceService,
    private readonly channels: ChannelsService,
    private readonly outbox: WebhookOutbox,
    private readonly writer: DatabaseWriter,
    private readonly db: DataSource,
    @Inject(RedisClients) private readonly redis: RedisClients | null,
  ) {
    this.intervalMs = config.webhooks?.notificationIntervalMs ?? 60_000;
  }

  onModuleInit(): void {
    if (!this.outbox.enabled) return;
    // 'render': after the state listeners, so heads and read markers include this batch.
    this.bus.on('messages.created', ({ messages }, source) => {
      if (source.local) this.afterCommit(messages).catch((err: Error) => this.logger.warn(`notification.needed not made: ${err.message}`));
    }, 'render');
  }

  async mute(caller: UserRef, channelId: string, muted: boolean): Promise<MuteState> {
    await this.channels.requireMember(channelId, caller.id);
    const mutedAt = muted ? Date.now() : null;
    const result = await this.writer.transaction((em) =>
      em
        .createQueryBuilder()
        .update(Membership)
        .set({ mutedAt })
        // Idempotent: muting a muted channel keeps its first time.
        .where(`channelId = :channelId AND userId = :userId AND mutedAt IS ${muted ? '' : 'NOT '}NULL`, { channelId, userId: caller.id })
        .execute(),
    );
    // The member's devices, on every instance, get their conversation again (`muted`).
    if (result.affected) this.bus.publish('member.muted', { channelId, userId: caller.id, mutedAt });
    return { channelId, muted };
  }

  /** The notifications a committed batch calls for (exported for tests: resolves when appended). */
  async afterCommit(messages: MessageView[]): Promise<void> {
    const byChannel = new Map<string, MessageView[]>();
    for (const m of messages) byChannel.set(m.channelId, [...(byChannel.get(m.channelId) ?? []), m]);
    const events: WebhookEvent[] = [];
    for (const [channelId, list] of byChannel) events.push(...(await this.forChannel(channelId, list)));
    if (events.length > 0) await this.writer.transaction((em) => this.outbox.append(em, events));
  }

  private async forChannel(channelId: string, messages: MessageView[]): Promise<WebhookEvent[]> {
    const state = this.store.peek(channelId) ?? (await this.store.get(channelId));
    if (!state) return [];
    // Per member, the newest message of the batch that someone else sent: the last one, or for its
    // sender the newest by anyone else. O(members + messages), whatever the batch.
    const last = messages[messages.length - 1];
    const lastByOther = [...messages].reverse().find((m) => senderOf(m) !== senderOf(last));
    const mentioned = new Map<string, MessageView>();
    for (const m of messages) for (const id of mentionedUserIds(m)) if (id !== senderOf(m)) mentioned.set(id, m);
    const now = Date.now();
    const due = new Map<string, { message: MessageView; reason: Reason }>();
    for (const userId of state.members.keys()) {
      const mention = mentioned.get(userId);
      const message = mention ?? (userId === senderOf(last) ? lastByOther : last);
      if (!message) continue;
      const reason: Reason | null = mention ? 'mention' : this.presence.statusOf(userId) === 'offline' ? 'offline' : null;
      // Folded here already: skip without asking anyone (the common case in a busy channel).
      if (reason && (this.folded.get(`${userId} ${channelId}`) ?? 0) <= now) due.set(userId, { message, reason });
    }
    if (due.size === 0) return [];
    for (const userId of await this.mutedIn(channelId)) due.delete(userId);
    const allowed = await this.unfolded(channelId, [...due.keys()]);
    const channel = { id: state.id, kind: state.kind, name: state.name };
    return allowed.flatMap((userId) => {
      const member = state.members.get(userId);
      if (!member) return [];
      const { message, reason } = due.get(userId)!;
      const event: WebhookEvent = {
        type: 'notification.needed',
        key: channelId, // after the message.created it is about
        data: {
          user: { id: userId, username: member.username },
          channel,
          message,
          reason,
          unreadCount: unreadCount(state, member.lastReadSeq),
        },
      };
      return [event];
    });
  }

  /**
   * Read from the database each time, not kept in memory: a mute on another instance then needs
   * no bus change, and the query runs only when someone is due a notification (rare, folded).
   */
  private async mutedIn(channelId: string): Promise<string[]> {
    const rows = await this.db
      .getRepository(Membership)
      .createQueryBuilder('m')
      .select('m.userId', 'userId')
      .where('m.channelId = :channelId AND m.mutedAt IS NOT NULL', { channelId })
      .getRawMany<{ userId: string }>();
    return rows.map((r) => r.userId);
  }

  /**
   * Which of these users may be notified for this channel now, taking the slot: this instance's
   * memory first (cheap), then Redis (SET NX PX) so that instances committing the same channel's
   * messages fold together. Redis away: this instance's word alone.
   */
  private async unfolded(channelId: string, userIds: string[]): Promise<string[]> {
    if (this.intervalMs === 0) return userIds;
    const now = Date.now();
    const local = userIds.filter((u) => (this.folded.get(`${u} ${channelId}`) ?? 0) <= now);
    for (const u of local) this.folded.set(`${u} ${channelId}`, now + this.intervalMs);
    if (!this.redis || local.length === 0) return local;
    try {
      const prefix = this.config.redisPrefix;
      const pipeline = this.redis.commands.pipeline();
      for (const u of local) pipeline.set(`${prefix}:notify:${u}:${channelId}`, '1', 'PX', this.intervalMs, 'NX');
      const results = (await pipeline.exec()) ?? [];
      return local.filter((_, i) => results[i]?.[1] === 'OK');
    } catch {
      return local;
    }
  }
}
