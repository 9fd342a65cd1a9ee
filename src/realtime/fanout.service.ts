import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import type { ChannelState } from '../channels/channel-state.store.js';
import { ChannelsService } from '../channels/channels.service.js';
import { DomainEvents, DomainEventMap } from '../common/domain-events.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { FanoutBus } from './fanout-bus.js';
import { frame } from './server-events.js';

/**
 * Turns committed changes into frames. `message.new` is serialized once per message and the
 * same bytes go to every member connection; `conversation.update` is personal (read marker,
 * unread count, a DM's name), so it is built per user, from memory.
 *
 * The conversation.update that follows messages is throttled per channel: the first goes out at
 * once, later ones within CONVERSATION_UPDATE_INTERVAL_MS are folded into one at the end of the
 * interval, built from the state as it is then. A busy 1,000-member channel thus costs its
 * members a few updates a second instead of doubling every delivery; every update is exact.
 */
@Injectable()
export class FanoutService implements OnModuleInit, OnModuleDestroy {
  private readonly lastUpdate = new LRUCache<string, number>({ max: 100_000 });
  private readonly pending = new Map<string, { channel: ChannelState; timer: NodeJS.Timeout }>();

  constructor(
    private readonly events: DomainEvents,
    private readonly bus: FanoutBus,
    private readonly channels: ChannelsService,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
  ) {}

  onModuleDestroy(): void {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  onModuleInit(): void {
    this.events.on('messages.created', (e) => this.onMessages(e));
    this.events.on('read.moved', ({ channel, userId, origin }) => {
      this.bus.toUsers([userId], this.conversationFrame(channel, userId), { exceptConnectionId: origin });
    });
    this.events.on('member.joined', ({ channel, user, origin }) => {
      const others = [...channel.members.keys()].filter((id) => id !== user.id);
      this.bus.toUsers(others, frame('member.joined', { channelId: channel.id, user }));
      // The joiner's other devices learn of the new conversation.
      this.bus.toUsers([user.id], this.conversationFrame(channel, user.id), { exceptConnectionId: origin });
    });
    this.events.on('member.left', ({ channel, user, origin }) => {
      this.bus.toUsers(channel.members.keys(), frame('member.left', { channelId: channel.id, user }));
      this.bus.toUsers([user.id], frame('channel.left', { channelId: channel.id }), { exceptConnectionId: origin });
    });
    this.events.on('conversation.created', ({ channel, userIds, origin }) => {
      for (const userId of userIds) this.bus.toUsers([userId], this.conversationFrame(channel, userId), { exceptConnectionId: origin });
    });
  }

  private onMessages({ messages }: DomainEventMap['messages.created']): void {
    // A commit's messages grouped by channel, in seq order: each member connection gets its
    // channel's new messages together.
    const byChannel = new Map<ChannelState, string[]>();
    for (const { message, channel } of messages) {
      const frames = byChannel.get(channel);
      const f = frame('message.new', { message });
      if (frames) frames.push(f);
      else byChannel.set(channel, [f]);
    }
    let delivered = 0;
    for (const [channel, frames] of byChannel) {
      // When the channel's update is due, each member's conversation.update rides in the same
      // write as the messages; otherwise it waits (folded) for the end of the interval.
      const personal = this.dueForUpdate(channel) ? this.conversationFrames(channel) : undefined;
      delivered += frames.length * this.bus.toUsers(channel.members.keys(), frames, { personal });
      if (!personal) this.scheduleConversationUpdates(channel);
    }
    this.metrics.messagesDelivered.inc(delivered);
  }

  /** True (and the channel's clock restarted) when its last update is an interval old. */
  private dueForUpdate(channel: ChannelState): boolean {
    const now = performance.now();
    if (now - (this.lastUpdate.get(channel.id) ?? -Infinity) < this.config.conversationUpdateIntervalMs) return false;
    this.lastUpdate.set(channel.id, now);
    const pending = this.pending.get(channel.id);
    if (pending) {
      clearTimeout(pending.timer);
      this.pending.delete(channel.id);
    }
    return true;
  }

  /**
   * The folded update of a channel whose messages keep coming faster than the interval. The
   * timer leaves room past the interval, so under steady traffic the next message carries the
   * update (no burst of its own); it fires only when the channel goes quiet.
   */
  private scheduleConversationUpdates(channel: ChannelState): void {
    if (this.pending.has(channel.id)) return;
    const interval = this.config.conversationUpdateIntervalMs;
    const wait = (this.lastUpdate.get(channel.id) ?? 0) + interval * 1.5 - performance.now();
    const timer = setTimeout(() => {
      this.pending.delete(channel.id);
      this.lastUpdate.set(channel.id, performance.now());
      const build = this.conversationFrames(channel);
      for (const userId of channel.members.keys()) this.bus.toUsers([userId], build(userId));
    }, Math.max(0, wait));
    this.pending.set(channel.id, { channel, timer });
  }

  private conversationFrame(channel: ChannelState, userId: string): string {
    return frame('conversation.update', { conversation: this.channels.conversationFor(channel, userId) });
  }

  /**
   * For a group channel only the read marker and unread count differ between members, so the
   * rest is serialized once and the two numbers spliced in (the fan-out hot path). The result
   * is the same JSON as `conversationFrame` (a unit test holds it to that).
   */
  conversationFrames(channel: ChannelState): (userId: string) => string {
    if (channel.kind === 'dm') return (userId) => this.conversationFrame(channel, userId);
    const shared = JSON.stringify({
      channelId: channel.id,
      kind: channel.kind,
      lastMessage: channel.lastMessage,
      headSeq: channel.headSeq,
      name: channel.name ?? '',
    });
    const head = `{"event":"conversation.update","data":{"conversation":${shared.slice(0, -1)},"lastReadSeq":`;
    return (userId) => {
      const lastReadSeq = channel.members.get(userId)?.lastReadSeq ?? channel.headSeq;
      return `${head}${lastReadSeq},"unreadCount":${Math.max(0, channel.headSeq - lastReadSeq)}}}}`;
    };
  }
}
