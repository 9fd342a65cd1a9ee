import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource, EntityManager } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { PresenceService } from '../presence/presence.service.js';
import { toUserRef } from '../users/user.mapper.js';
import { UsersService } from '../users/users.service.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { Channel } from './channel.entity.js';
import { ChannelState, ChannelStateStore, MemberState } from './channel-state.store.js';
import { byRecentActivity, ConversationView, toConversation } from './conversation.mapper.js';
import type { ChannelSummary, CreateChannelDto } from './dto/channel.dto.js';
import { Membership, MemberRole } from './membership.entity.js';

interface Caller {
  id: string;
  username: string;
}

@Injectable()
export class ChannelsService {
  /** DM key (sorted user ids) → channel id. */
  private readonly dmChannels = new LRUCache<string, string>({ max: 100_000 });

  constructor(
    private readonly db: DataSource,
    private readonly writer: DatabaseWriter,
    private readonly store: ChannelStateStore,
    private readonly users: UsersService,
    private readonly presence: PresenceService,
    private readonly bus: FanoutBus,
  ) {}

  conversationFor(state: ChannelState, userId: string): ConversationView {
    return toConversation(state, userId, this.presence.statusOf);
  }

  async conversations(userId: string): Promise<ConversationView[]> {
    const states = await this.store.getMany(await this.store.channelIdsOf(userId));
    return states.sort(byRecentActivity).map((s) => this.conversationFor(s, userId));
  }

  /**
   * The access check of every channel operation. A private channel or DM the caller is not in
   * answers not_found (its existence is nobody else's business); a public one answers forbidden.
   */
  async requireMember(channelId: string, userId: string): Promise<ChannelState> {
    const state = await this.store.get(channelId);
    if (!state) throw AppError.notFound('channel');
    if (!state.members.has(userId)) {
      if (state.visibility !== 'public') throw AppError.notFound('channel');
      throw AppError.forbidden('not a member of this channel');
    }
    return state;
  }

  async create(caller: Caller, dto: CreateChannelDto): Promise<ChannelSummary> {
    const wanted = [...new Set((dto.members ?? []).map((u) => u.toLowerCase()))].filter(
      (u) => u !== caller.username.toLowerCase(),
    );
    const found = await this.users.findByUsernames(wanted);
    const missing = wanted.filter((u) => !found.has(u));
    if (missing.length > 0) {
      throw new AppError('not_found', `unknown user(s): ${missing.slice(0, 20).join(', ')}`, { usernames: missing });
    }
    const members = [{ id: caller.id, role: 'owner' as MemberRole }, ...[...found.values()].map((u) => ({ id: u.id, role: 'member' as MemberRole }))];
    const channel = this.newChannel({ kind: 'channel', name: dto.name, visibility: dto.visibility });
    try {
      await this.writer.transaction(async (em) => {
        await em.insert(Channel, channel);
        await this.insertMembers(em, channel.id, members, 0);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('conflict', `channel name "${dto.name}" is taken`);
      throw err;
    }
    this.bus.publish('conversation.created', { channelId: channel.id, userIds: members.map((m) => m.id) });
    return this.summary(await this.loaded(channel.id), caller.id);
  }

  async directory(userId: string, query: string | undefined, limit: number): Promise<ChannelSummary[]> {
    const q = this.db
      .createQueryBuilder()
      .select(['c.id AS id', 'c.name AS name', 'c.visibility AS visibility', 'c.created_at AS created_at'])
      .addSelect('(SELECT COUNT(*) FROM memberships m WHERE m.channel_id = c.id)', 'member_count')
      .addSelect('(SELECT COUNT(*) FROM memberships m WHERE m.channel_id = c.id AND m.user_id = :userId)', 'joined')
      .from('channels', 'c')
      .where("c.kind = 'channel' AND c.visibility = 'public'")
      .setParameter('userId', userId)
      .orderBy('c.name_key', 'ASC')
      .limit(limit);
    if (query) {
      const escaped = query.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c);
      q.andWhere("c.name_key LIKE :q ESCAPE '\\'", { q: `%${escaped}%` });
    }
    const rows = await q.getRawMany<{ id: string; name: string; visibility: 'public'; created_at: string | number; member_count: string | number; joined: string | number }>();
    return rows.map((r) => ({
      id: r.id,
      kind: 'channel' as const,
      name: r.name,
      visibility: r.visibility,
      memberCount: Number(r.member_count),
      createdAt: new Date(Number(r.created_at)).toISOString(),
      joined: Number(r.joined) > 0,
    }));
  }

  /** Joins a public channel by name, creating it when nobody has yet (chat-room style). */
  async joinByName(caller: Caller, name: string, origin?: string): Promise<{ conversation: ConversationView; joined: boolean }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.db.getRepository(Channel).findOneBy({ nameKey: name.toLowerCase() });
      if (existing) return this.join(caller, existing.id, origin);
      const channel = this.newChannel({ kind: 'channel', name, visibility: 'public' });
      try {
        await this.writer.transaction(async (em) => {
          await em.insert(Channel, channel);
          await this.insertMembers(em, channel.id, [{ id: caller.id, role: 'owner' }], 0);
        });
      } catch (err) {
        if (isUniqueViolation(err)) continue; // created meanwhile by someone else: join theirs
        throw err;
      }
      this.bus.publish('conversation.created', { channelId: channel.id, userIds: [caller.id], origin });
      return { conversation: this.conversationFor(await this.loaded(channel.id), caller.id), joined: true };
    }
    throw new AppError('conflict', 'channel is being created concurrently; retry');
  }

  async join(caller: Caller, channelId: string, origin?: string): Promise<{ conversation: ConversationView; joined: boolean }> {
    const state = await this.store.get(channelId);
    if (!state) throw AppError.notFound('channel');
    if (state.members.has(caller.id)) return { conversation: this.conversationFor(state, caller.id), joined: false };
    if (state.kind === 'dm' || state.visibility !== 'public') {
      // Private channels are by invitation; their existence is not revealed to outsiders.
      throw AppError.notFound('channel');
    }
    const joinedAt = Date.now();
    let lastReadSeq = 0;
    try {
      await this.writer.transaction(async (em) => {
        // History from before joining does not count as unread.
        const row = await em.getRepository(Channel).findOneByOrFail({ id: channelId });
        lastReadSeq = row.headSeq;
        await this.insertMembers(em, channelId, [{ id: caller.id, role: 'member' }], lastReadSeq, joinedAt);
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err; // joined concurrently: fine
    }
    const member: MemberState = { userId: caller.id, username: caller.username, role: 'member', lastReadSeq, joinedAt };
    this.bus.publish('member.joined', { channelId, member, origin });
    return { conversation: this.conversationFor(await this.loaded(channelId), caller.id), joined: true };
  }

  async leave(caller: Caller, channelId: string, origin?: string): Promise<void> {
    const state = await this.requireMember(channelId, caller.id);
    if (state.kind === 'dm') throw AppError.forbidden('a direct message cannot be left');
    await this.writer.transaction((em) => em.delete(Membership, { channelId, userId: caller.id }));
    this.bus.publish('member.left', { channelId, user: toUserRef(caller), origin });
  }

  /** The DM of a pair: one channel per pair, made on first use. */
  async getOrCreateDm(caller: Caller, peerUsername: string): Promise<{ state: ChannelState; created: boolean }> {
    const peer = await this.users.resolveUsername(peerUsername);
    if (!peer) throw AppError.notFound('user');
    if (peer.id === caller.id) throw new AppError('invalid_payload', 'cannot open a direct message with yourself');
    const dmKey = [caller.id, peer.id].sort().join(':');
    // A DM's channel never changes once made: after the first look-up, no query.
    const known = this.dmChannels.get(dmKey);
    const knownState = known ? await this.store.get(known) : null;
    if (knownState) return { state: knownState, created: false };
    const repo = this.db.getRepository(Channel);
    let existing = await repo.findOneBy({ dmKey });
    let created = false;
    if (!existing) {
      const channel = this.newChannel({ kind: 'dm', name: null, visibility: 'private', dmKey });
      try {
        await this.writer.transaction(async (em) => {
          await em.insert(Channel, channel);
          await this.insertMembers(em, channel.id, [{ id: caller.id, role: 'member' }, { id: peer.id, role: 'member' }], 0);
        });
        existing = channel;
        created = true;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        existing = await repo.findOneByOrFail({ dmKey }); // the other side opened it at the same moment
      }
    }
    if (created) this.bus.publish('conversation.created', { channelId: existing.id, userIds: [caller.id, peer.id] });
    const state = await this.loaded(existing.id);
    this.dmChannels.set(dmKey, state.id);
    return { state, created };
  }

  summary(state: ChannelState, userId: string): ChannelSummary {
    const conv = this.conversationFor(state, userId);
    return {
      id: state.id,
      kind: state.kind,
      name: conv.name,
      visibility: state.visibility,
      memberCount: state.members.size,
      createdAt: new Date(state.createdAt).toISOString(),
      joined: state.members.has(userId),
    };
  }

  private async loaded(channelId: string): Promise<ChannelState> {
    const state = await this.store.get(channelId);
    if (!state) throw AppError.notFound('channel');
    return state;
  }

  private newChannel(fields: Pick<Channel, 'kind' | 'name' | 'visibility'> & { dmKey?: string }): Channel {
    return Object.assign(new Channel(), {
      id: randomUUID(),
      kind: fields.kind,
      name: fields.name,
      nameKey: fields.name ? fields.name.toLowerCase() : null,
      visibility: fields.visibility,
      dmKey: fields.dmKey ?? null,
      headSeq: 0,
      createdAt: Date.now(),
    });
  }

  private async insertMembers(
    em: EntityManager,
    channelId: string,
    members: { id: string; role: MemberRole }[],
    lastReadSeq: number,
    joinedAt = Date.now(),
  ): Promise<void> {
    // In chunks: one INSERT of a thousand rows is past SQLite's expression-depth limit.
    for (let i = 0; i < members.length; i += 100) {
      const rows = members.slice(i, i + 100).map((m) => ({ channelId, userId: m.id, role: m.role, lastReadSeq, joinedAt }));
      await em.insert(Membership, rows);
    }
  }
}
