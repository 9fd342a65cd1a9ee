import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { ChannelState, ChannelStateStore, isArchived, mentionCount, unreadCount } from '../channels/channel-state.store.js';
import { ChannelsService } from '../channels/channels.service.js';
import { AppConfig } from '../config/app-config.js';
import type { ChangeOrigin } from '../fanout/changes.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { PresenceService } from '../presence/presence.service.js';
import { BlocksService } from '../users/blocks.service.js';
import type { UserRef } from '../users/user.mapper.js';
import { ChannelSequencer, Delivery } from './channel-sequencer.js';
import { ConnectionRegistry } from './connection-registry.js';
import { frame, messageNewFrame, messageUpdatedFrame } from './server-events.js';

/** A delivery that may answer a local connection's frame. */
type OriginDelivery = Delivery & { origin?: ChangeOrigin };

/**
 * Turns committed changes, this instance's and the others' (the FanoutBus brings both, after the
 * state has moved), into frames for this instance's connections. `message.new` is serialized once
 * per message and the same bytes go to every member connection, in seq order (ChannelSequencer);
 * `conversation.update` is personal (read marker, unread count, a DM's name), so it is built per
 * user, from memory.
 *
 * A channel that is neither cached nor being loaded here has no member connected here (a session
 * loads all of its user's channels), so another instance's change to it needs nothing from this one. This
 * instance's own messages always go out: their channel is loaded if it has to be.
 *
 * The conversation.update that follows messages is throttled per channel: the first goes out at
 * once, later ones within CONVERSATION_UPDATE_INTERVAL_MS are folded into one at the end of the
 * interval, built from the state as it is then. A busy 1,000-member channel thus costs its
 * members a few updates a second instead of doubling every delivery; every update is exact.
 *
 * Presence goes only where it is shared (`ChannelStateStore.peersOf`). When that changes for a
 * pair (an acceptance, a block, an unblock), both sides are told where the other is now.
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
    private readonly presence: PresenceService,
    private readonly blocks: BlocksService,
  ) {}

  onModuleDestroy(): void {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  onModuleInit(): void {
    this.sequencer.deliver = (channel, items) => this.deliverMessages(channel, items);
    this.bus.on('messages.created', ({ messages }, { local }) => {
      // This instance's commit: the senders' acks go first (this turn), the fan-out on the next.
      const items = messages.map((message) => ({ message, isNew: true }));
      if (local) setImmediate(() => this.onMessages(items, true));
      else this.onMessages(items, false);
    });
    // Published after the same commit's messages.created: the same setImmediate queue keeps them in order.
    this.bus.on('messages.updated', ({ messages, origin }, { local }) => {
      const items = messages.map((message) => ({ message, isNew: false, origin: origin?.[message.rev] }));
      if (local) setImmediate(() => this.onMessages(items, true));
      else this.onMessages(items, false);
    });
    this.bus.on('read.moved', ({ channelId, userId, origin }) => {
      const channel = this.store.peek(channelId);
      if (channel) this.registry.toUsers([userId], this.conversationFrame(channel, userId), { exceptConnectionId: origin });
    });
    this.bus.on('member.joined', ({ channelId, member, by, origin }) => {
      this.withChannel(channelId, [member.userId], (channel) => {
        const user = { id: member.userId, username: member.username };
        const others = [...channel.members.keys()].filter((id) => id !== user.id);
        this.registry.toUsers(others, frame('member.joined', by ? { channelId, user, by } : { channelId, user }));
        // The joiner's other devices learn of the new conversation.
        this.registry.toUsers([user.id], this.conversationFrame(channel, user.id), { exceptConnectionId: origin });
      });
    });
    this.bus.on('member.left', ({ channelId, user, by, origin }) => {
      // Removed by someone else: every connection of theirs (origin is the remover's, if any).
      this.registry.toUsers([user.id], frame('channel.left', { channelId }), { exceptConnectionId: by ? undefined : origin });
      const channel = this.store.peek(channelId);
      if (channel) this.registry.toMembers(channel.members, frame('member.left', by ? { channelId, user, by } : { channelId, user }));
    });
    this.bus.on('channel.updated', ({ channelId, by }) => {
      const channel = this.store.peek(channelId);
      if (!channel) return;
      for (const userId of channel.members.keys()) {
        this.registry.toUsers([userId], frame('channel.updated', { conversation: this.channels.conversationFor(channel, userId), by }));
      }
    });
    this.bus.on('member.role', ({ channelId, user, role, by }) => {
      const channel = this.store.peek(channelId);
      if (channel) this.registry.toMembers(channel.members, frame('member.updated', { channelId, user, role, by }));
    });
    this.bus.on('member.hidden', ({ channelId, userId }) => {
      this.registry.toUsers([userId], frame('conversation.hidden', { channelId }));
    });
    this.bus.on('member.muted', ({ channelId, userId }) => {
      const channel = this.store.peek(channelId);
      if (channel?.members.has(userId)) this.registry.toUsers([userId], this.conversationFrame(channel, userId));
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
    this.bus.on('member.accepted', ({ channelId, userId, quiet, origin }) => {
      const channel = this.store.peek(channelId);
      const member = channel?.members.get(userId);
      if (!channel || !member) return;
      // The accepter's devices see it accepted; in a DM the opener's view changes too (the peer's status).
      const viewers = quiet ? [] : channel.kind === 'dm' ? [...channel.members.keys()] : [userId];
      for (const id of viewers) {
        this.registry.toUsers([id], this.conversationFrame(channel, id), { exceptConnectionId: id === userId ? origin : undefined });
      }
      if (channel.kind !== 'dm' && channel.members.size > this.config.presenceMaxChannelMembers) return;
      const accepter = { id: userId, username: member.username };
      for (const other of channel.members.values()) {
        if (other.userId === userId || other.acceptedAt === null || this.blocks.between(userId, other.userId) !== false) continue;
        this.reveal(accepter, { id: other.userId, username: other.username });
      }
    });
    this.bus.on('block.changed', ({ blocker, blocked, blocking }) => {
      // Only a pair whose presence a conversation carries has anything to learn.
      if (!this.store.shareAccepted(blocker.id, blocked.id, this.config.presenceMaxChannelMembers)) return;
      if (!blocking) {
        if (this.blocks.between(blocker.id, blocked.id) === false) this.reveal(blocker, blocked);
      } else if (this.blocks.hasBlocked(blocked.id, blocker.id) === false) {
        this.hide(blocker, blocked); // unless the other had blocked first, they saw each other until now
      }
    });
  }

  /**
   * Presence has just started to flow between a and b: each learns that the other is online (an
   * offline peer is what they saw already). Maybe a repeat, if another conversation carried it.
   */
  private reveal(a: UserRef, b: UserRef): void {
    const now = new Date().toISOString();
    if (this.presence.statusOf(b.id) === 'online') this.registry.toUsers([a.id], frame('presence.update', { user: b, status: 'online', lastSeenAt: now }));
    if (this.presence.statusOf(a.id) === 'online') this.registry.toUsers([b.id], frame('presence.update', { user: a, status: 'online', lastSeenAt: now }));
  }

  /** Presence has just stopped flowing between a and b: each sees the other offline from now on (lastSeenAt null: not shared). */
  private hide(a: UserRef, b: UserRef): void {
    if (this.presence.statusOf(b.id) === 'online') this.registry.toUsers([a.id], frame('presence.update', { user: b, status: 'offline', lastSeenAt: null }));
    if (this.presence.statusOf(a.id) === 'online') this.registry.toUsers([b.id], frame('presence.update', { user: a, status: 'offline', lastSeenAt: null }));
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

  private onMessages(items: OriginDelivery[], local: boolean): void {
    // A commit's messages grouped by channel, in rev order: each member connection gets its
    // channel's new messages together.
    const byChannel = new Map<string, OriginDelivery[]>();
    for (const item of items) {
      const list = byChannel.get(item.message.channelId);
      if (list) list.push(item);
      else byChannel.set(item.message.channelId, [item]);
    }
    for (const [channelId, list] of byChannel) {
      const channel = this.store.peek(channelId);
      if (channel) this.sequencer.push(channel, list);
      // Being loaded: a member here has just been given it (the DM its first message made). The
      // loaded state may already hold these messages; the sequencer still delivers them once.
      else if (local || this.store.isLoading(channelId)) void this.store.get(channelId).then((c) => c && this.sequencer.push(c, list));
    }
  }

  /** One channel's next messages and changes, in rev order: to every member connection here. */
  private deliverMessages(channel: ChannelState, items: OriginDelivery[]): void {
    if (items.some((item) => item.origin)) return this.deliverAnswering(channel, items);
    const frames = items.map(({ message, isNew }) => (isNew ? messageNewFrame(message) : messageUpdatedFrame(message)));
    // When the channel's update is due, each member's conversation.update rides in the same
    // write as the messages; otherwise it waits (folded) for the end of the interval.
    const started = performance.now();
    const personal = this.dueForUpdate(channel) ? this.conversationFrames(channel) : undefined;
    const delivered = frames.length * this.registry.toMembers(channel.members, frames, { personal });
    if (!personal) this.scheduleConversationUpdates(channel);
    this.countDelivered(delivered, started);
  }

  /**
   * Changes some of which answer a connection here (edits, deletes, reactions asked over
   * WebSocket): one at a time, the asker getting its copy with the `ref` of its frame, in the
   * same rev order as everyone else. Changes are rare; this path need not be the fast one.
   */
  private deliverAnswering(channel: ChannelState, items: OriginDelivery[]): void {
    const started = performance.now();
    let delivered = 0;
    for (const { message, isNew, origin } of items) {
      if (isNew) {
        delivered += this.registry.toMembers(channel.members, messageNewFrame(message));
        continue;
      }
      delivered += this.registry.toMembers(channel.members, messageUpdatedFrame(message), { exceptConnectionId: origin?.connectionId });
      if (!origin) continue;
      for (const userId of channel.members.keys()) {
        for (const conn of this.registry.of(userId) ?? []) {
          if (conn.id === origin.connectionId) conn.send(frame('message.updated', origin.ref === undefined ? { message } : { message, ref: origin.ref }));
        }
      }
    }
    this.scheduleConversationUpdates(channel);
    this.countDelivered(delivered, started);
  }

  /**
   * A channel's share of a commit, delivered: how many frames, and how long writing them held the
   * event loop (the walk over a large channel's connections is most of a message's latency here,
   * and what a bigger channel or a slower machine makes longer: docs/deployment.md).
   */
  private countDelivered(delivered: number, started: number): void {
    this.metrics.messagesDelivered.inc(delivered);
    if (delivered > 0) this.metrics.fanoutWriteSeconds.observe((performance.now() - started) / 1000);
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
      // No shared frames: each member's own, one write per connection.
      this.registry.toMembers(channel.members, [], { personal: this.conversationFrames(channel) });
    }, Math.max(0, wait));
    this.pending.set(channel.id, { channel, timer });
  }

  private conversationFrame(channel: ChannelState, userId: string): string {
    return frame('conversation.update', { conversation: this.channels.conversationFor(channel, userId) });
  }

  /**
   * For a group channel only the read marker, unread count and acceptance differ between members,
   * so the rest is serialized once and those spliced in (the fan-out hot path). The result is the
   * same JSON as `conversationFrame` (a unit test holds it to that).
   */
  conversationFrames(channel: ChannelState): (userId: string) => string {
    if (channel.kind === 'dm') return (userId) => this.conversationFrame(channel, userId);
    const shared = JSON.stringify({
      channelId: channel.id,
      kind: channel.kind,
      lastMessage: channel.lastMessage,
      headSeq: channel.headSeq,
      headRev: channel.headRev,
      name: channel.name ?? '',
      topic: channel.topic ?? null,
      archived: isArchived(channel),
    });
    const head = `{"event":"conversation.update","data":{"conversation":${shared.slice(0, -1)},"lastReadSeq":`;
    return (userId) => {
      const member = channel.members.get(userId);
      const lastReadSeq = member?.lastReadSeq ?? channel.headSeq;
      const accepted = (member?.acceptedAt ?? null) !== null;
      const muted = (member?.mutedAt ?? null) !== null;
      return `${head}${lastReadSeq},"unreadCount":${unreadCount(channel, lastReadSeq)},"mentionCount":${mentionCount(channel, userId, lastReadSeq)},"accepted":${accepted},"muted":${muted}}}}`;
    };
  }
}
