import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource } from 'typeorm';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MESSAGE_COLUMNS, MessageRow, MessageView, rowToMessage } from '../messages/message.mapper.js';
import type { ChannelKind, ChannelVisibility } from './channel.entity.js';
import type { MemberRole } from './membership.entity.js';

export interface MemberState {
  userId: string;
  username: string;
  role: MemberRole;
  lastReadSeq: number;
  joinedAt: number;
}

/** Channels kept in memory at most (a few KB each, more for big channels). */
const MAX_CACHED_CHANNELS = 100_000;

/** What fan-out and the conversation list need of a channel, kept in memory. */
export interface ChannelState {
  id: string;
  kind: ChannelKind;
  name: string | null;
  visibility: ChannelVisibility;
  createdAt: number;
  headSeq: number;
  lastMessage: MessageView | null;
  members: Map<string, MemberState>;
  /** The head when this state was read from the database (see ChannelSequencer). */
  loadedHeadSeq: number;
  /** Up to which seq this instance's connections got `message.new` live; null: none yet since the load. */
  deliveredSeq: number | null;
}

/**
 * The in-memory view of channels, members and read markers, so that sending a message checks
 * membership and computes every member's unread count without a query per recipient.
 *
 * Loaded lazily from the database, then kept correct by the committed changes the FanoutBus
 * brings, this instance's and every other one's alike (the store is the bus's first listener). A
 * change that lands while a load is in flight bumps the channel's version and the load starts
 * over, so a load never caches a state older than a committed change.
 *
 * It also keeps, for the cached channels, which channels each user is in: presence finds a
 * user's peers there without a query.
 */
@Injectable()
export class ChannelStateStore {
  // Bounded: a channel nobody has touched for a while is dropped and read again when needed.
  private readonly states = new LRUCache<string, ChannelState>({
    max: MAX_CACHED_CHANNELS,
    dispose: (state) => this.unindex(state),
  });
  private readonly loading = new Map<string, Promise<ChannelState | null>>();
  private readonly versions = new LRUCache<string, number>({ max: MAX_CACHED_CHANNELS });
  /** user id → ids of the cached channels they are in. */
  private readonly channelsByUser = new Map<string, Set<string>>();

  constructor(
    private readonly db: DataSource,
    bus: FanoutBus,
  ) {
    bus.on('messages.created', ({ messages }) => {
      for (const m of messages) {
        const state = this.touch(m.channelId);
        if (state) this.applyMessage(state, m);
      }
    }, 'state');
    bus.on('read.moved', ({ channelId, userId, seq }) => {
      const member = this.touch(channelId)?.members.get(userId);
      if (member && member.lastReadSeq < seq) member.lastReadSeq = seq;
    }, 'state');
    bus.on('member.joined', ({ channelId, member }) => {
      const state = this.touch(channelId);
      if (!state) return;
      state.members.set(member.userId, { ...member });
      this.index(member.userId, channelId);
    }, 'state');
    bus.on('member.left', ({ channelId, user }) => {
      const state = this.touch(channelId);
      if (!state) return;
      state.members.delete(user.id);
      this.channelsByUser.get(user.id)?.delete(channelId);
    }, 'state');
  }

  /** The cached state, or undefined: no load. */
  peek(channelId: string): ChannelState | undefined {
    return this.states.get(channelId);
  }

  cached(): IterableIterator<ChannelState> {
    return this.states.values();
  }

  /**
   * Users who share a cached channel with this one (DMs always; channels up to `maxMembers`).
   * A user connected here had all their channels loaded at session start, so the cache holds
   * every channel that links them to a connected peer.
   */
  peersOf(userId: string, maxMembers: number): Set<string> {
    const peers = new Set<string>();
    for (const channelId of this.channelsByUser.get(userId) ?? []) {
      const s = this.states.peek(channelId);
      if (!s || (s.kind !== 'dm' && s.members.size > maxMembers)) continue;
      for (const id of s.members.keys()) if (id !== userId) peers.add(id);
    }
    return peers;
  }

  get(channelId: string): Promise<ChannelState | null> {
    const cached = this.states.get(channelId);
    if (cached) return Promise.resolve(cached);
    let pending = this.loading.get(channelId);
    if (!pending) {
      pending = this.load(channelId).finally(() => this.loading.delete(channelId));
      this.loading.set(channelId, pending);
    }
    return pending;
  }

  async getMany(channelIds: string[]): Promise<ChannelState[]> {
    const states = await Promise.all(channelIds.map((id) => this.get(id)));
    return states.filter((s): s is ChannelState => s !== null);
  }

  /** Ids of the channels a user belongs to (from the database: the user may have none cached). */
  async channelIdsOf(userId: string): Promise<string[]> {
    const rows: { channel_id: string }[] = await this.db
      .createQueryBuilder()
      .select('ms.channel_id', 'channel_id')
      .from('memberships', 'ms')
      .where('ms.user_id = :userId', { userId })
      .getRawMany();
    return rows.map((r) => r.channel_id);
  }

  // ---- changes, applied after they commit -------------------------------------------------

  /** Call for every committed change of a channel, cached or not. */
  touch(channelId: string): ChannelState | undefined {
    this.versions.set(channelId, (this.versions.get(channelId) ?? 0) + 1);
    return this.states.get(channelId);
  }

  applyMessage(state: ChannelState, message: MessageView): void {
    this.touch(state.id);
    if (message.seq > state.headSeq) {
      state.headSeq = message.seq;
      state.lastMessage = message;
    }
    const sender = state.members.get(message.sender.id);
    if (sender && sender.lastReadSeq < message.seq) sender.lastReadSeq = message.seq;
  }

  /**
   * Reads a cached channel again and updates it in place (the objects that fan-out holds stay
   * valid): after the bus was cut, members and markers may have missed changes. The head only
   * moves forward; messages it skips are the sequencer's to refill. Gone channels are dropped.
   */
  async refresh(channelId: string): Promise<ChannelState | undefined> {
    const cached = this.states.get(channelId);
    if (!cached) return undefined;
    let fresh: ChannelState | null = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const version = this.touch(channelId) && this.versions.get(channelId);
      fresh = await this.read(channelId);
      if (this.versions.get(channelId) === version) break; // else a change landed meanwhile: read again
    }
    if (!fresh) {
      this.states.delete(channelId);
      return undefined;
    }
    this.unindex(cached);
    cached.name = fresh.name;
    cached.visibility = fresh.visibility;
    cached.members = fresh.members;
    if (fresh.headSeq > cached.headSeq) {
      cached.headSeq = fresh.headSeq;
      cached.lastMessage = fresh.lastMessage;
    }
    for (const userId of cached.members.keys()) this.index(userId, channelId);
    return cached;
  }

  /** The database's heads of these channels (channels that do not exist are left out). */
  async heads(channelIds: string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    for (let i = 0; i < channelIds.length; i += 500) {
      const rows = await this.db
        .createQueryBuilder()
        .select(['c.id AS id', 'c.head_seq AS head_seq'])
        .from('channels', 'c')
        .where('c.id IN (:...ids)', { ids: channelIds.slice(i, i + 500) })
        .getRawMany<{ id: string; head_seq: string | number }>();
      for (const r of rows) heads.set(r.id, Number(r.head_seq));
    }
    return heads;
  }

  private index(userId: string, channelId: string): void {
    let set = this.channelsByUser.get(userId);
    if (!set) this.channelsByUser.set(userId, (set = new Set()));
    set.add(channelId);
  }

  private unindex(state: ChannelState): void {
    for (const userId of state.members.keys()) {
      const set = this.channelsByUser.get(userId);
      if (!set) continue;
      set.delete(state.id);
      if (set.size === 0) this.channelsByUser.delete(userId);
    }
  }

  // ---- loading ------------------------------------------------------------------------------

  private async load(channelId: string): Promise<ChannelState | null> {
    for (let attempt = 0; ; attempt++) {
      const version = this.versions.get(channelId) ?? 0;
      const state = await this.read(channelId);
      if ((this.versions.get(channelId) ?? 0) === version) {
        if (state) {
          this.states.set(channelId, state);
          for (const userId of state.members.keys()) this.index(userId, channelId);
        }
        return state;
      }
      // Overtaken by changes again and again: answer this once, but never cache what may be
      // stale (a member who left would stay a member here).
      if (attempt >= 5) return state;
    }
  }

  private async read(channelId: string): Promise<ChannelState | null> {
    const ch = await this.db
      .createQueryBuilder()
      .select(['c.id AS id', 'c.kind AS kind', 'c.name AS name', 'c.visibility AS visibility'])
      .addSelect(['c.created_at AS created_at', 'c.head_seq AS head_seq'])
      .from('channels', 'c')
      .where('c.id = :channelId', { channelId })
      .getRawOne<{ id: string; kind: ChannelKind; name: string | null; visibility: ChannelVisibility; created_at: string | number; head_seq: string | number }>();
    if (!ch) return null;
    const [members, last] = await Promise.all([
      this.db
        .createQueryBuilder()
        .select(['ms.user_id AS user_id', 'u.username AS username', 'ms.role AS role'])
        .addSelect(['ms.last_read_seq AS last_read_seq', 'ms.joined_at AS joined_at'])
        .from('memberships', 'ms')
        .innerJoin('users', 'u', 'u.id = ms.user_id')
        .where('ms.channel_id = :channelId', { channelId })
        .getRawMany<{ user_id: string; username: string; role: MemberRole; last_read_seq: number | string; joined_at: number | string }>(),
      this.db
        .createQueryBuilder()
        .select(MESSAGE_COLUMNS)
        .from('messages', 'm')
        .innerJoin('users', 'u', 'u.id = m.sender_id')
        .where('m.channel_id = :channelId AND m.seq = :seq', { channelId, seq: Number(ch.head_seq) })
        .getRawOne<MessageRow>(),
    ]);
    return {
      id: ch.id,
      kind: ch.kind,
      name: ch.name,
      visibility: ch.visibility,
      createdAt: Number(ch.created_at),
      headSeq: Number(ch.head_seq),
      lastMessage: last ? rowToMessage(last) : null,
      members: new Map(
        members.map((m) => [
          m.user_id,
          { userId: m.user_id, username: m.username, role: m.role, lastReadSeq: Number(m.last_read_seq), joinedAt: Number(m.joined_at) },
        ]),
      ),
      loadedHeadSeq: Number(ch.head_seq),
      deliveredSeq: null,
    };
  }
}
