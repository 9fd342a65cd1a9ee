import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { ChannelState, ChannelStateStore } from '../channels/channel-state.store.js';
import { ChannelsService } from '../channels/channels.service.js';
import { AppConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import type { MessageView } from '../messages/message.mapper.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ChannelSequencer } from './channel-sequencer.js';
import { ConnectionRegistry } from './connection-registry.js';
import { frame } from './server-events.js';

/**
 * Turns committed changes, this instance's and the others' (the FanoutBus brings both, after the
 * state has moved), into frames for this instance's connections. `message.new` is serialized once
 * per message and the same bytes go to every member connection, in seq order (ChannelSequencer);
 * `conversation.update` is personal (read marker, unread count, a DM's name), so it is built per
 * user, from memory.
 *
 * A channel that is not cached here has no member connected here (a session loads all of its
 * user's channels), so another instance's change to it needs nothing from this one. This
 * instance's own messages always go out: their channel is loaded if it has to be.
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
    private readonly bus: FanoutBus,
    private readonly registry: ConnectionRegistry,
    private readonly store: ChannelStateStore,
    private readonly sequencer: ChannelSequencer,
    private readonly channels: ChannelsService,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
  ) {}

  onModuleDestroy(): void {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  onModuleInit(): void {
    this.sequencer.deliver = (channel, messages) => this.deliverMessages(channel, messages);
    this.bus.on('messages.created', ({ messages }, { local }) => {
      // This instance's commit: the senders' acks go first (this turn), the fan-out on the next.
      if (local) setImmediate(() => this.onMessages(messages, true));
      else this.onMessages(messages, false);
    });
    this.bus.on('read.moved', ({ channelId, userId, origin }) => {
      const channel = this.store.peek(channelId);
      if (channel) this.registry.toUsers([userId], this.conversationFrame(channel, userId), { exceptConnectionId: origin });
    });
    this.bus.on('member.joined', ({ channelId, member, origin }) => {
      this.withChannel(channelId, [member.userId], (channel) => {
        const user = { id: member.userId, username: member.username };
        const others = [...channel.members.keys()].filter((id) => id !== user.id);
        this.registry.toUsers(others, frame('member.joined', { channelId, user }));
        // The joiner's other devices learn of the new conversation.
        this.registry.toUsers([user.id], this.conversationFrame(channel, user.id), { exceptConnectionId: origin });
      });
    });
    this.bus.on('member.left', ({ channelId, user, origin }) => {
      this.registry.toUsers([user.id], frame('channel.left', { channelId }), { exceptConnectionId: origin });
      const channel = this.store.peek(channelId);
      if (channel) this.registry.toUsers(channel.members.keys(), frame('member.left', { channelId, user }));
    });
    this.bus.on('conversation.created', ({ channelId, userIds, origin }) => {
      this.withChannel(channelId, userIds, (channel) => {
        for (const userId of userIds) this.registry.toUsers([userId], this.conversationFrame(channel, userId), { exceptConnectionId: origin });
      });
    });
    this.bus.on('typing', ({ channelId, user }) => {
      const channel = this.store.peek(channelId);
      if (!channel) return;
      // Not echoed to the typist's own devices.
      const others = [...channel.members.keys()].filter((id) => id !== user.id);
      this.registry.toUsers(others, frame('typing', { channelId, user }));
    });
    this.bus.on('presence.changed', ({ user, status, lastSeenAt }) => {
      const peers = this.store.peersOf(user.id, this.config.presenceMaxChannelMembers);
      this.registry.toUsers(peers, frame('presence.update', { user, status, lastSeenAt }));
    });
  }

  /**
   * Runs `render` with the channel's state, loading it when one of `userIds` is connected here
   * (a channel they have just joined or been given is not cached yet).
   */
  private withChannel(channelId: string, userIds: string[], render: (channel: ChannelState) => void): void {
    const cached = this.store.peek(channelId);
    if (cached) return render(cached);
    if (!userIds.some((id) => this.registry.of(id))) return;
    void this.store.get(channelId).then((channel) => channel && render(channel));
  }

  private onMessages(messages: MessageView[], local: boolean): void {
    // A commit's messages grouped by channel, in seq order: each member connection gets its
    // channel's new messages together.
    const byChannel = new Map<string, MessageView[]>();
    for (const m of messages) {
      const list = byChannel.get(m.channelId);
      if (list) list.push(m);
      else byChannel.set(m.channelId, [m]);
    }
    for (const [channelId, list] of byChannel) {
      const channel = this.store.peek(channelId);
      if (channel) this.sequencer.push(channel, list);
      else if (local) void this.store.get(channelId).then((c) => c && this.sequencer.push(c, list));
    }
  }

  /** One channel's next messages, in order: to every member connection here. */
  private deliverMessages(channel: ChannelState, messages: MessageView[]): void {
    const frames = messages.map((message) => frame('message.new', { message }));
    // When the channel's update is due, each member's conversation.update rides in the same
    // write as the messages; otherwise it waits (folded) for the end of the interval.
    const personal = this.dueForUpdate(channel) ? this.conversationFrames(channel) : undefined;
    const delivered = frames.length * this.registry.toUsers(channel.members.keys(), frames, { personal });
    if (!personal) this.scheduleConversationUpdates(channel);
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
      for (const userId of channel.members.keys()) this.registry.toUsers([userId], build(userId));
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
