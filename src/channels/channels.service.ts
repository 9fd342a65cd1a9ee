import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource, EntityManager } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { PresenceService } from '../presence/presence.service.js';
import { type BlockRecord, BlocksService, eitherBlocked } from '../users/blocks.service.js';
import { toUserRef } from '../users/user.mapper.js';
import { UsersService } from '../users/users.service.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { WebhookChannel, webhookEvents } from '../webhooks/webhook-events.js';
import { WebhookOutbox } from '../webhooks/webhook-outbox.js';
import { Channel } from './channel.entity.js';
import { ChannelQuotas } from './channel-quotas.js';
import { ChannelState, ChannelStateStore, isArchived, MemberState } from './channel-state.store.js';
import { byRecentActivity, ConversationView, PresenceStatus, toConversation } from './conversation.mapper.js';
import type { ChannelSummary, CreateChannelDto } from './dto/channel.dto.js';
import { Membership, MemberRole } from './membership.entity.js';

interface Caller {
  id: string;
  username: string;
}

/** A new membership: creators and joiners accept at once (acceptedAt set), invitees later (null). */
export interface NewMember {
  id: string;
  role: MemberRole;
  acceptedAt: number | null;
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
    private readonly blocks: BlocksService,
    private readonly config: AppConfig,
    private readonly quotas: ChannelQuotas,
    private readonly outbox: WebhookOutbox,
  ) {}

  /** A DM's peer shows their real status only to someone who shares presence with them (see peersOf). */
  conversationFor(state: ChannelState, userId: string): ConversationView {
    return toConversation(state, userId, (peerId) => this.visibleStatus(userId, peerId, state));
  }

  /**
   * `conversationFor` for a request's answer: the viewer's blocks are loaded first, so a DM's
   * peer status is exact even for a caller with no session (without them it would say offline).
   */
  async viewFor(state: ChannelState, userId: string): Promise<ConversationView> {
    await this.blocks.of(userId);
    return this.conversationFor(state, userId);
  }

  /** `userId`'s status as `viewerId` may see it; `via`: a conversation they share, looked at first. */
  visibleStatus(viewerId: string, userId: string, via?: ChannelState): PresenceStatus {
    const shared = this.store.sharesPresence(viewerId, userId, this.config.presenceMaxChannelMembers, via);
    return shared ? this.presence.statusOf(userId) : 'offline';
  }

  /**
   * The user's conversation list, most recent first, without the DMs they hid (until their next
   * message). Loads every channel of theirs and their blocks, which fan-out and presence then find
   * in memory (a session starts with this).
   *
   * Paged when `page` asks: at most `limit`, after the conversation `before` (a channel id, the last
   * of the previous page). The answer stays a plain array either way, so v1 clients are unchanged;
   * a page shorter than `limit` is the last. Ties in activity are broken by channel id, so the
   * order is total and a page boundary never repeats or skips a conversation that did not move.
   */
  async conversations(userId: string, page: { limit?: number; before?: string } = {}): Promise<ConversationView[]> {
    const [states] = await Promise.all([this.store.channelIdsOf(userId).then((ids) => this.store.getMany(ids)), this.blocks.of(userId)]);
    let listed = states.filter((s) => !isHidden(s, userId)).sort((a, b) => byRecentActivity(a, b) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    if (page.before !== undefined) {
      const at = listed.findIndex((s) => s.id === page.before);
      if (at < 0) throw new AppError('not_found', 'before: not one of your listed conversations');
      listed = listed.slice(at + 1);
    }
    if (page.limit !== undefined) listed = listed.slice(0, page.limit);
    return listed.map((s) => this.conversationFor(s, userId));
  }

  /**
   * The access check of every channel operation. A private channel or DM the caller is not in
   * answers not_found (its existence is nobody else's business); a public one answers forbidden.
   */
  async requireMember(channelId: string, userId: string): Promise<ChannelState> {
    const state = await this.store.get(channelId);
    if (!state) throw AppError.notFound('channel');
    if (!state.members.has(userId) && !(await this.store.recheckMember(state, userId))) {
      if (state.visibility !== 'public') throw AppError.notFound('channel');
      throw AppError.forbidden('not a member of this channel');
    }
    return state;
  }

  /**
   * Creates a channel with its creator as owner. Listed members are added as invitees who accept
   * it later (by posting, reading or accepting); those who blocked the creator are left out,
   * quietly: the creator sees only the member count.
   *
   * Names: unique among public channels. A private channel may not take a public one's name
   * (that one is in the directory, so refusing reveals nothing); private names are not unique,
   * so no private channel ever makes a create fail.
   */
  async create(caller: Caller, dto: CreateChannelDto): Promise<ChannelSummary> {
    const wanted = [...new Set((dto.members ?? []).map((u) => u.toLowerCase()))].filter(
      (u) => u !== caller.username.toLowerCase(),
    );
    this.quotas.checkMembersPerRequest(wanted.length);
    const [found, creator] = await Promise.all([this.users.findByUsernames(wanted), this.blocks.of(caller.id), this.quotas.checkCreate(caller.id)]);
    const missing = wanted.filter((u) => !found.has(u));
    if (missing.length > 0) {
      throw new AppError('not_found', `unknown user(s): ${missing.slice(0, 20).join(', ')}`, { usernames: missing });
    }
    const now = Date.now();
    const members: NewMember[] = [
      { id: caller.id, role: 'owner', acceptedAt: now },
      ...[...found.values()].filter((u) => !creator.blockedBy.has(u.id)).map((u) => ({ id: u.id, role: 'member' as MemberRole, acceptedAt: null })),
    ];
    await this.quotas.checkRoom([caller, ...[...found.values()].filter((u) => members.some((m) => m.id === u.id))], caller.id);
    const taken = () => new AppError('conflict', `channel name "${dto.name}" is taken by a public channel`);
    if (dto.visibility === 'private' && (await this.db.getRepository(Channel).existsBy({ nameKey: dto.name.toLowerCase() }))) throw taken();
    const channel = this.newChannel({ kind: 'channel', name: dto.name, visibility: dto.visibility, createdBy: caller.id });
    try {
      await this.writer.transaction(async (em) => {
        await em.insert(Channel, channel);
        await this.insertMembers(em, channel.id, members, 0, now);
        const users = new Map([caller, ...found.values()].map((u) => [u.id, toUserRef(u)]));
        const refs = members.map((m) => users.get(m.id)!);
        await this.outbox.append(em, [webhookEvents.channelCreated(webhookChannel(channel), toUserRef(caller), refs)]);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw taken();
      return this.users.rethrowIfCallerGone(err, caller.id);
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

  /**
   * Joins a public channel by name, creating it when nobody has yet (chat-room style). Only public
   * channels have a name key, so a private channel of the same name is neither found nor in the way.
   */
  async joinByName(caller: Caller, name: string, origin?: string): Promise<{ conversation: ConversationView; joined: boolean }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.db.getRepository(Channel).findOneBy({ nameKey: name.toLowerCase() });
      if (existing) return this.join(caller, existing.id, origin);
      await Promise.all([this.quotas.checkCreate(caller.id), this.quotas.checkRoom([caller], caller.id)]);
      const channel = this.newChannel({ kind: 'channel', name, visibility: 'public', createdBy: caller.id });
      try {
        await this.writer.transaction(async (em) => {
          await em.insert(Channel, channel);
          await this.insertMembers(em, channel.id, [{ id: caller.id, role: 'owner', acceptedAt: channel.createdAt }], 0, channel.createdAt);
          await this.outbox.append(em, [webhookEvents.channelCreated(webhookChannel(channel), toUserRef(caller), [toUserRef(caller)])]);
        });
      } catch (err) {
        if (isUniqueViolation(err)) continue; // created meanwhile by someone else: join theirs
        return this.users.rethrowIfCallerGone(err, caller.id);
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
    assertNotArchived(state);
    await this.quotas.checkRoom([caller], caller.id);
    const joinedAt = Date.now();
    let lastReadSeq = 0;
    try {
      await this.writer.transaction(async (em) => {
        // History from before joining does not count as unread.
        const row = await em.getRepository(Channel).findOneByOrFail({ id: channelId });
        lastReadSeq = row.headSeq;
        await this.insertMembers(em, channelId, [{ id: caller.id, role: 'member', acceptedAt: joinedAt }], lastReadSeq, joinedAt);
        await this.outbox.append(em, [webhookEvents.memberJoined(channelId, toUserRef(caller))]);
      });
    } catch (err) {
      if (!isUniqueViolation(err)) await this.users.rethrowIfCallerGone(err, caller.id); // else joined concurrently: fine
    }
    const member: MemberState = { userId: caller.id, username: caller.username, role: 'member', lastReadSeq, joinedAt, acceptedAt: joinedAt };
    this.bus.publish('member.joined', { channelId, member, origin });
    return { conversation: this.conversationFor(await this.loaded(channelId), caller.id), joined: true };
  }

  async leave(caller: Caller, channelId: string, origin?: string): Promise<void> {
    const state = await this.requireMember(channelId, caller.id);
    if (state.kind === 'dm') throw AppError.forbidden('a direct message cannot be left');
    await this.writer.transaction(async (em) => {
      const { affected } = await em.delete(Membership, { channelId, userId: caller.id });
      // Left meanwhile (another device): that one's event is enough.
      if (affected) await this.outbox.append(em, [webhookEvents.memberLeft(channelId, toUserRef(caller))]);
    });
    this.bus.publish('member.left', { channelId, user: toUserRef(caller), origin });
  }

  /**
   * The DM of a pair: one channel per pair, made on first use. Its opener has accepted it; the
   * peer has not until they post in it or accept it. No new DM between users when either blocked
   * the other (an existing one stays readable; `assertCanPost` refuses sends in it).
   */
  async getOrCreateDm(caller: Caller, peerUsername: string): Promise<{ state: ChannelState; created: boolean }> {
    const open = this.openDm(caller, peerUsername);
    if (open) return { state: open, created: false };
    const peer = await this.users.resolveUsername(peerUsername);
    if (!peer) throw AppError.notFound('user');
    if (peer.id === caller.id) throw new AppError('invalid_payload', 'cannot open a direct message with yourself');
    const dmKey = dmKeyOf(caller.id, peer.id);
    const mine = await this.blocks.of(caller.id); // also makes the answer's peer status exact
    // A DM's channel never changes once made: after the first look-up, no query.
    const known = this.dmChannels.get(dmKey);
    const knownState = known ? await this.store.get(known) : null;
    if (knownState) return { state: knownState, created: false };
    const repo = this.db.getRepository(Channel);
    let existing = await repo.findOneBy({ dmKey });
    let created = false;
    if (!existing) {
      if (eitherBlocked(mine, peer.id)) throw AppError.forbidden('direct messages with this user are blocked');
      await this.quotas.checkRoom([caller, peer], caller.id);
      const channel = this.newChannel({ kind: 'dm', name: null, visibility: 'private', dmKey });
      const members: NewMember[] = [
        { id: caller.id, role: 'member', acceptedAt: channel.createdAt },
        { id: peer.id, role: 'member', acceptedAt: null },
      ];
      try {
        await this.writer.transaction(async (em) => {
          await em.insert(Channel, channel);
          await this.insertMembers(em, channel.id, members, 0, channel.createdAt);
          await this.outbox.append(em, [webhookEvents.channelCreated(webhookChannel(channel), toUserRef(caller), [toUserRef(caller), peer])]);
        });
        existing = channel;
        created = true;
      } catch (err) {
        if (!isUniqueViolation(err)) return this.users.rethrowIfCallerGone(err, caller.id);
        existing = await repo.findOneByOrFail({ dmKey }); // the other side opened it at the same moment
      }
    }
    if (created) this.bus.publish('conversation.created', { channelId: existing.id, userIds: [caller.id, peer.id] });
    const state = await this.loaded(existing.id);
    this.dmChannels.set(dmKey, state.id);
    return { state, created };
  }

  /**
   * The DM a `message.send` with `to` goes to on every send after the first: the peer's name, the
   * caller's blocks and the DM all in memory, so no await, no query. The ingest benchmark's sends
   * all come this way; the general path above allocated about a fifth of what its main thread
   * allocated (each await, the sorted pair), and its garbage collector was a third of its time.
   * Undefined sends the caller down the general path, which answers the same.
   */
  private openDm(caller: Caller, peerUsername: string): ChannelState | undefined {
    const peer = this.users.cachedUsername(peerUsername);
    if (!peer || peer.id === caller.id || !this.blocks.cached(caller.id)) return undefined;
    const channelId = this.dmChannels.get(dmKeyOf(caller.id, peer.id));
    return channelId === undefined ? undefined : this.store.peek(channelId);
  }

  /**
   * The conversation a send goes to, found without an await, or undefined. Answered only when all
   * that `MessagesService.send`'s general path would check is in memory and allows the post: the
   * channel (or the open DM, see openDm), the caller a member who has accepted it (so acceptPending
   * has nothing to do), the channel not archived, and in a DM the caller's blocks loaded and
   * neither side blocking. Every other case, refusals included, goes down the general path, which
   * is the one place that words them. Why: every `await` of that path is a promise and a
   * suspended function kept for the send's life; under load (ingest: thousands of sends waiting
   * for their commit) they outlive the young generation and the garbage collector copies them.
   */
  postableNow(caller: Caller, input: { channelId?: string; to?: string }): ChannelState | undefined {
    const state = input.to !== undefined ? this.openDm(caller, input.to) : this.store.peek(input.channelId!);
    if (!state || isArchived(state)) return undefined;
    const me = state.members.get(caller.id);
    if (!me || me.acceptedAt === null) return undefined;
    if (state.kind !== 'dm') return state;
    const mine = this.blocks.cached(caller.id);
    return mine && !dmBlocked(state, caller.id, mine) ? state : undefined;
  }

  /**
   * Refuses a post where it may not go: an archived channel (read-only; edits, deletes and
   * reactions should ask this too), a DM between users one of whom blocked the other.
   */
  async assertCanPost(state: ChannelState, userId: string): Promise<void> {
    assertNotArchived(state);
    if (state.kind !== 'dm') return;
    const mine = this.blocks.cached(userId) ?? (await this.blocks.of(userId));
    if (dmBlocked(state, userId, mine)) throw AppError.forbidden('direct messages with this user are blocked');
  }

  /** `POST /channels/:id/accept`: the caller accepts a conversation someone else put them in (idempotent). */
  async accept(caller: Caller, channelId: string, origin?: string): Promise<ConversationView> {
    const state = await this.requireMember(channelId, caller.id);
    await this.acceptPending(state, caller.id, { origin });
    return this.viewFor(state, caller.id);
  }

  /**
   * Marks the member's acceptance, once: posting in a conversation accepts it, and so does
   * reading a channel (not a DM: a request can be read without accepting it). Cheap when accepted
   * already (in memory), so the send path calls it every time. `quiet` when a change that brings
   * the conversation.update follows (see ChangeMap).
   */
  async acceptPending(state: ChannelState, userId: string, opts: { origin?: string; quiet?: boolean } = {}): Promise<void> {
    if (state.members.get(userId)?.acceptedAt !== null) return;
    const acceptedAt = Date.now();
    const result = await this.writer.transaction((em) =>
      em
        .createQueryBuilder()
        .update(Membership)
        .set({ acceptedAt })
        .where('channelId = :channelId AND userId = :userId AND acceptedAt IS NULL', { channelId: state.id, userId })
        .execute(),
    );
    // Nothing updated: accepted meanwhile (another device), and announced by that one.
    if (result.affected) this.bus.publish('member.accepted', { channelId: state.id, userId, acceptedAt, ...opts });
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

  async loaded(channelId: string): Promise<ChannelState> {
    const state = await this.store.get(channelId);
    if (!state) throw AppError.notFound('channel');
    return state;
  }

  private newChannel(fields: Pick<Channel, 'kind' | 'name' | 'visibility'> & { dmKey?: string; createdBy?: string }): Channel {
    return Object.assign(new Channel(), {
      id: randomUUID(),
      kind: fields.kind,
      name: fields.name,
      // Public names only: see Channel.nameKey.
      nameKey: fields.name && fields.visibility === 'public' ? fields.name.toLowerCase() : null,
      visibility: fields.visibility,
      dmKey: fields.dmKey ?? null,
      headSeq: 0,
      createdAt: Date.now(),
      topic: null,
      createdBy: fields.createdBy ?? null,
      archivedAt: null,
    });
  }

  async insertMembers(em: EntityManager, channelId: string, members: NewMember[], lastReadSeq: number, joinedAt: number): Promise<void> {
    // In chunks: one INSERT of a thousand rows is past SQLite's expression-depth limit.
    for (let i = 0; i < members.length; i += 100) {
      const rows = members.slice(i, i + 100).map((m) => ({ channelId, userId: m.id, role: m.role, lastReadSeq, joinedAt, acceptedAt: m.acceptedAt }));
      await em.insert(Membership, rows);
    }
  }
}

/** A channel row as webhook events show it. */
export function webhookChannel(c: Channel): WebhookChannel {
  return { id: c.id, kind: c.kind, name: c.name, visibility: c.visibility, createdAt: new Date(c.createdAt).toISOString() };
}

/** A DM's key: the pair's ids in order (so either side finds the same channel). */
const dmKeyOf = (a: string, b: string): string => (a < b ? `${a}:${b}` : `${b}:${a}`);

/** An archived channel is read-only: the one refusal every write path shares (HTTP and WebSocket alike). */
export function assertNotArchived(state: ChannelState): void {
  if (isArchived(state)) throw AppError.archived();
}

/** Whether either member of DM `state` blocked the other (`mine`: `userId`'s blocks); no array per send. */
function dmBlocked(state: ChannelState, userId: string, mine: BlockRecord): boolean {
  for (const peer of state.members.keys()) if (peer !== userId) return eitherBlocked(mine, peer);
  return false;
}

/** A DM this member hid, with no message since (see Membership.hiddenSeq). */
export const isHidden = (state: ChannelState, userId: string): boolean => {
  const hiddenSeq = state.members.get(userId)?.hiddenSeq ?? null;
  return hiddenSeq !== null && state.headSeq <= hiddenSeq;
};
