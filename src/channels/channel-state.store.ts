import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource } from 'typeorm';
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
}

/**
 * The in-memory view of channels, members and read markers, so that sending a message checks
 * membership and computes every member's unread count without a query per recipient.
 *
 * Loaded lazily from the database, then kept correct by the services, which apply every change
 * here right after it commits. A change that lands while a load is in flight bumps the channel's
 * version and the load starts over, so a load never caches a state older than a committed change.
 * Single-instance truth: with several instances, the Redis bus has to carry these changes too.
 */
@Injectable()
export class ChannelStateStore {
  // Bounded: a channel nobody has touched for a while is dropped and read again when needed.
  private readonly states = new LRUCache<string, ChannelState>({ max: MAX_CACHED_CHANNELS });
  private readonly loading = new Map<string, Promise<ChannelState | null>>();
  private readonly versions = new LRUCache<string, number>({ max: MAX_CACHED_CHANNELS });

  constructor(private readonly db: DataSource) {}

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

  applyRead(channelId: string, userId: string, seq: number): void {
    const member = this.touch(channelId)?.members.get(userId);
    if (member && member.lastReadSeq < seq) member.lastReadSeq = seq;
  }

  applyMemberAdded(channelId: string, member: MemberState): void {
    this.touch(channelId)?.members.set(member.userId, member);
  }

  applyMemberRemoved(channelId: string, userId: string): void {
    this.touch(channelId)?.members.delete(userId);
  }

  // ---- loading ------------------------------------------------------------------------------

  private async load(channelId: string): Promise<ChannelState | null> {
    for (let attempt = 0; ; attempt++) {
      const version = this.versions.get(channelId) ?? 0;
      const state = await this.read(channelId);
      if ((this.versions.get(channelId) ?? 0) === version || attempt >= 5) {
        if (state) this.states.set(channelId, state);
        return state;
      }
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
    };
  }
}
