import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { PresenceService } from '../presence/presence.service.js';
import { BlockRecord, BlocksService, eitherBlocked } from '../users/blocks.service.js';
import { toUserRef, type UserRef } from '../users/user.mapper.js';
import { UsersService } from '../users/users.service.js';
import { Channel, type ChannelVisibility } from './channel.entity.js';
import { ChannelQuotas } from './channel-quotas.js';
import { ChannelState, ChannelStateStore, isArchived, MemberState } from './channel-state.store.js';
import { assertNotArchived, ChannelsService, NewMember, webhookChannel } from './channels.service.js';
import { WebhookOutbox } from '../webhooks/webhook-outbox.js';
import { AuditService } from '../audit/audit.service.js';
import { webhookEvents } from '../webhooks/webhook-events.js';
import type { PresenceStatus } from './conversation.mapper.js';
import type { ChannelDetails, InviteMembersDto, MembersPage, MemberView, UpdateChannelDto } from './dto/channel-admin.dto.js';
import { Membership, type MemberRole } from './membership.entity.js';

interface Caller {
  id: string;
  username: string;
}

/** Who may manage a channel: rename it, change its topic or visibility, invite to a private one, remove members. */
const MANAGERS: MemberRole[] = ['owner', 'admin'];
const OWNER: MemberRole[] = ['owner'];

/**
 * Channel administration: details, changes by the owner and admins, the member list, hidden DMs.
 *
 * Each administrative action is one method (`update`, `archive`, `invite`, `remove`, `setRole`):
 * the place to record it in an audit log. Each checks permissions twice: in memory first (a quick
 * refusal), then inside its write transaction against the database (the truth when a role or an
 * archive changed on another instance a moment ago). Each change is committed, then published on
 * the FanoutBus, which updates every instance's memory and renders the frames.
 */
@Injectable()
export class ChannelAdminService {
  constructor(
    private readonly db: DataSource,
    private readonly writer: DatabaseWriter,
    private readonly store: ChannelStateStore,
    private readonly channels: ChannelsService,
    private readonly users: UsersService,
    private readonly blocks: BlocksService,
    private readonly presence: PresenceService,
    private readonly quotas: ChannelQuotas,
    private readonly bus: FanoutBus,
    private readonly outbox: WebhookOutbox,
    private readonly audit: AuditService,
  ) {}

  /** `GET /channels/:id`: to members, and to anyone for a public channel (it is in the directory). */
  async details(caller: Caller, channelId: string): Promise<ChannelDetails> {
    const state = await this.store.get(channelId);
    if (!state) throw AppError.notFound('channel');
    const member = state.members.has(caller.id) || (await this.store.recheckMember(state, caller.id));
    if (!member && (state.kind === 'dm' || state.visibility !== 'public')) throw AppError.notFound('channel');
    return this.detailsOf(state, caller.id);
  }

  /**
   * Administrative action: rename, topic, visibility (owner or admin). Public names stay unique.
   * A body with none of them changes nothing (as a merge patch would), after the same checks.
   */
  async update(caller: Caller, channelId: string, dto: UpdateChannelDto): Promise<ChannelDetails> {
    const state = await this.managed(caller, channelId, MANAGERS, 'only the owner or an admin may change the channel');
    if (dto.name === undefined && dto.topic === undefined && dto.visibility === undefined) return this.detailsOf(state, caller.id);
    const name = dto.name ?? state.name ?? '';
    const visibility: ChannelVisibility = dto.visibility ?? state.visibility;
    const taken = () => new AppError('conflict', `channel name "${name}" is taken by a public channel`);
    const renamed = dto.name !== undefined || dto.visibility !== undefined;
    let row: Channel | null = null;
    try {
      await this.writer.transaction(async (em) => {
        await this.authorize(em, channelId, caller.id, MANAGERS, 'only the owner or an admin may change the channel');
        // See Channel.nameKey: a private channel may not take a public one's name, and only public names are unique.
        if (renamed && visibility === 'private') {
          const clash = await em
            .createQueryBuilder()
            .select('c.id', 'id')
            .from('channels', 'c')
            .where('c.name_key = :key AND c.id <> :channelId', { key: name.toLowerCase(), channelId })
            .getRawOne();
          if (clash) throw taken();
        }
        const fields: Partial<Channel> = {};
        if (renamed) Object.assign(fields, { name, visibility, nameKey: visibility === 'public' ? name.toLowerCase() : null });
        if (dto.topic !== undefined) fields.topic = dto.topic === '' ? null : dto.topic;
        await em.update(Channel, { id: channelId }, fields);
        row = await em.findOneByOrFail(Channel, { id: channelId });
        await this.audit.record({ actor: actorOf(caller), action: 'channel.update', target: channelId, details: { ...dto } }, em);
        await this.outbox.append(em, [channelUpdatedEvent(row, caller)]); // last: the outbox's lock asks it
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw taken();
      throw err;
    }
    this.publishUpdated(row!, caller);
    return this.detailsOf(await this.channels.loaded(channelId), caller.id);
  }

  /** Administrative action: archive (owner). Read-only from then on; archiving again changes nothing. */
  async archive(caller: Caller, channelId: string): Promise<ChannelDetails> {
    const state = await this.managed(caller, channelId, OWNER, 'only the owner may archive the channel', { archivedOk: true });
    if (isArchived(state)) return this.detailsOf(state, caller.id);
    let row: Channel | null = null;
    await this.writer.transaction(async (em) => {
      await this.authorize(em, channelId, caller.id, OWNER, 'only the owner may archive the channel', { archivedOk: true });
      const result = await em
        .createQueryBuilder()
        .update(Channel)
        .set({ archivedAt: Date.now() })
        .where('id = :channelId AND archivedAt IS NULL', { channelId })
        .execute();
      if (!result.affected) return;
      row = await em.findOneByOrFail(Channel, { id: channelId });
      await this.audit.record({ actor: actorOf(caller), action: 'channel.archive', target: channelId }, em);
      await this.outbox.append(em, [channelUpdatedEvent(row, caller)]);
    });
    if (row) this.publishUpdated(row, caller); // else archived meanwhile, and announced by that one
    return this.detailsOf(await this.channels.loaded(channelId), caller.id);
  }

  /**
   * `GET /channels/:id/members`, by username, `limit` at a time. A member's status shows only
   * when presence flows between the caller and them: both accepted this channel and neither
   * blocked the other (the rule of every presence frame); any channel size, unlike the frames.
   */
  async members(caller: Caller, channelId: string, q: { cursor?: string; limit: number }): Promise<MembersPage> {
    const state = await this.channels.requireMember(channelId, caller.id);
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    const query = this.db
      .createQueryBuilder()
      .select(['ms.user_id AS user_id', 'u.username AS username', 'u.username_key AS username_key', 'ms.role AS role', 'ms.accepted_at AS accepted_at'])
      .from('memberships', 'ms')
      .innerJoin('users', 'u', 'u.id = ms.user_id')
      .where('ms.channel_id = :channelId', { channelId })
      .orderBy('u.username_key', 'ASC')
      .limit(q.limit + 1);
    if (after !== undefined) query.andWhere('u.username_key > :after', { after });
    const [rows, mine] = await Promise.all([
      query.getRawMany<{ user_id: string; username: string; username_key: string; role: MemberRole; accepted_at: string | number | null }>(),
      this.blocks.of(caller.id),
    ]);
    const page = rows.slice(0, q.limit);
    const members = page.map((r): MemberView => ({
      user: { id: r.user_id, username: r.username },
      role: r.role,
      status: this.statusIn(state, caller.id, mine, r.user_id, r.accepted_at !== null),
    }));
    return { members, nextCursor: rows.length > q.limit ? encodeCursor(page[page.length - 1].username_key) : null };
  }

  /**
   * Administrative action: invite (`POST /channels/:id/members`). Any member may invite to a
   * public channel (anyone could join it), only the owner or an admin to a private one. As at a
   * create: invitees must accept (post, read, or accept), those who blocked the inviter are left
   * out quietly, members already in are skipped, and the quotas hold.
   */
  async invite(caller: Caller, channelId: string, dto: InviteMembersDto): Promise<ChannelDetails> {
    const wanted = [...new Set(dto.usernames.map((u) => u.toLowerCase()))].filter((u) => u !== caller.username.toLowerCase());
    this.quotas.checkMembersPerRequest(wanted.length, 'usernames');
    const state = await this.channels.requireMember(channelId, caller.id);
    const roles: MemberRole[] | 'any' = state.visibility === 'public' ? 'any' : MANAGERS;
    await this.managed(caller, channelId, roles, 'only the owner or an admin may invite to a private channel');
    const [found, inviter] = await Promise.all([this.users.findByUsernames(wanted), this.blocks.of(caller.id)]);
    const missing = wanted.filter((u) => !found.has(u));
    if (missing.length > 0) throw new AppError('not_found', `unknown user(s): ${missing.slice(0, 20).join(', ')}`, { usernames: missing });
    const invitees = [...found.values()].filter((u) => !inviter.blockedBy.has(u.id) && !state.members.has(u.id));
    if (invitees.length > 0) await this.quotas.checkRoom(invitees, caller.id);
    const joinedAt = Date.now();
    let added: MemberState[] = [];
    await this.writer.transaction(async (em) => {
      await this.authorize(em, channelId, caller.id, roles, 'only the owner or an admin may invite to a private channel');
      if (invitees.length === 0) return;
      // Members by now (joined on another instance a moment ago) are skipped, not an error.
      const present = new Set(
        (
          await em
            .createQueryBuilder()
            .select('ms.user_id', 'user_id')
            .from('memberships', 'ms')
            .where('ms.channel_id = :channelId AND ms.user_id IN (:...ids)', { channelId, ids: invitees.map((u) => u.id) })
            .getRawMany<{ user_id: string }>()
        ).map((r) => r.user_id),
      );
      const fresh = invitees.filter((u) => !present.has(u.id));
      // History from before the invitation does not count as unread (as for a join).
      const { headSeq } = await em.findOneByOrFail(Channel, { id: channelId });
      await this.channels.insertMembers(em, channelId, fresh.map((u): NewMember => ({ id: u.id, role: 'member', acceptedAt: null })), headSeq, joinedAt);
      added = fresh.map((u) => ({ userId: u.id, username: u.username, role: 'member', lastReadSeq: headSeq, joinedAt, acceptedAt: null, hiddenSeq: null }));
      if (fresh.length > 0) await this.audit.record({ actor: actorOf(caller), action: 'channel.invite', target: channelId, details: { userIds: fresh.map((u) => u.id) } }, em);
      await this.outbox.append(em, fresh.map((u) => webhookEvents.memberJoined(channelId, { id: u.id, username: u.username }, toUserRef(caller))));
    });
    const by = toUserRef(caller);
    for (const member of added) this.bus.publish('member.joined', { channelId, member, by });
    return this.detailsOf(await this.channels.loaded(channelId), caller.id);
  }

  /**
   * Administrative action: remove a member (owner or admin; an admin removes members only, never
   * the owner or another admin). The removed user's connections get `channel.left` and lose
   * access on every instance as soon as the change reaches it; the database refuses them before.
   */
  async remove(caller: Caller, channelId: string, userId: string): Promise<void> {
    const state = await this.managed(caller, channelId, MANAGERS, 'only the owner or an admin may remove members');
    const target = await this.memberOf(state, userId);
    if (userId === caller.id) throw AppError.forbidden('you cannot remove yourself: leave the channel instead');
    await this.writer.transaction(async (em) => {
      const roles = await this.authorize(em, channelId, caller.id, MANAGERS, 'only the owner or an admin may remove members', { also: userId });
      const targetRole = roles.get(userId);
      if (!targetRole) throw AppError.notFound('member');
      if (targetRole === 'owner') throw AppError.forbidden('the owner cannot be removed');
      if (targetRole === 'admin' && roles.get(caller.id) !== 'owner') throw AppError.forbidden('only the owner may remove an admin');
      await em.delete(Membership, { channelId, userId });
      await this.audit.record({ actor: actorOf(caller), action: 'channel.remove_member', target: channelId, details: { userId } }, em);
      await this.outbox.append(em, [webhookEvents.memberLeft(channelId, { id: userId, username: target.username }, toUserRef(caller))]);
    });
    this.bus.publish('member.left', { channelId, user: { id: userId, username: target.username }, by: toUserRef(caller) });
  }

  /** Administrative action: change a member's role to admin or member (owner only; ownership is not transferable). */
  async setRole(caller: Caller, channelId: string, userId: string, role: 'admin' | 'member'): Promise<MemberView> {
    const state = await this.managed(caller, channelId, OWNER, "only the owner may change members' roles");
    const target = await this.memberOf(state, userId);
    if (userId === caller.id) throw AppError.forbidden("the owner's role cannot change");
    let changed = false;
    await this.writer.transaction(async (em) => {
      const roles = await this.authorize(em, channelId, caller.id, OWNER, "only the owner may change members' roles", { also: userId });
      const current = roles.get(userId);
      if (!current) throw AppError.notFound('member');
      if (current === role) return;
      await em.update(Membership, { channelId, userId }, { role });
      await this.audit.record({ actor: actorOf(caller), action: 'channel.set_role', target: channelId, details: { userId, from: current, to: role } }, em);
      changed = true;
    });
    const user = { id: userId, username: target.username };
    if (changed) this.bus.publish('member.role', { channelId, user, role, by: toUserRef(caller) });
    const status = this.statusIn(state, caller.id, await this.blocks.of(caller.id), userId, target.acceptedAt !== null);
    return { user, role, status };
  }

  /** `POST /channels/:id/hide`: the caller hides a DM from their list until its next message. */
  async hide(caller: Caller, channelId: string): Promise<void> {
    const state = await this.channels.requireMember(channelId, caller.id);
    if (state.kind !== 'dm') throw AppError.forbidden('only a direct message can be hidden');
    let hiddenSeq = 0;
    await this.writer.transaction(async (em) => {
      // The head as committed: a message that is in already keeps it shown, the next one brings it back.
      hiddenSeq = (await em.findOneByOrFail(Channel, { id: channelId })).headSeq;
      await em.update(Membership, { channelId, userId: caller.id }, { hiddenSeq });
    });
    this.bus.publish('member.hidden', { channelId, userId: caller.id, hiddenSeq });
  }

  // ---- checks ---------------------------------------------------------------------------------

  /**
   * The in-memory checks of an administrative action: a member (or not_found / forbidden as
   * everywhere), a group channel, the role, and not archived.
   */
  private async managed(caller: Caller, channelId: string, roles: MemberRole[] | 'any', refusal: string, opts: { archivedOk?: boolean } = {}): Promise<ChannelState> {
    const state = await this.channels.requireMember(channelId, caller.id);
    if (state.kind === 'dm') throw AppError.forbidden('a direct message has no administration');
    const role = state.members.get(caller.id)?.role;
    if (roles !== 'any' && (!role || !roles.includes(role))) throw AppError.forbidden(refusal);
    if (!opts.archivedOk) assertNotArchived(state);
    return state;
  }

  /**
   * The same checks against the database, inside the write transaction: the caller's role (and
   * `also`'s) as committed, and the archive. Answers the roles read.
   */
  private async authorize(
    em: EntityManager,
    channelId: string,
    callerId: string,
    roles: MemberRole[] | 'any',
    refusal: string,
    opts: { archivedOk?: boolean; also?: string } = {},
  ): Promise<Map<string, MemberRole>> {
    const channel = await em
      .createQueryBuilder()
      .select('c.archived_at', 'archived_at')
      .from('channels', 'c')
      .where('c.id = :channelId', { channelId })
      .getRawOne<{ archived_at: string | number | null }>();
    if (!channel) throw AppError.notFound('channel');
    const rows = await em
      .createQueryBuilder()
      .select(['ms.user_id AS user_id', 'ms.role AS role'])
      .from('memberships', 'ms')
      .where('ms.channel_id = :channelId AND ms.user_id IN (:...ids)', { channelId, ids: [callerId, opts.also ?? callerId] })
      .getRawMany<{ user_id: string; role: MemberRole }>();
    const found = new Map(rows.map((r) => [r.user_id, r.role]));
    const role = found.get(callerId);
    if (!role) throw AppError.forbidden('not a member of this channel'); // removed a moment ago
    if (roles !== 'any' && !roles.includes(role)) throw AppError.forbidden(refusal);
    if (!opts.archivedOk && channel.archived_at !== null) throw new AppError('forbidden', 'this channel is archived (read-only)', { reason: 'archived' });
    return found;
  }

  /** A member's status as the viewer may see it in this channel's member list (see `members`). */
  private statusIn(state: ChannelState, viewerId: string, mine: BlockRecord, userId: string, accepted: boolean): PresenceStatus {
    if (userId === viewerId) return this.presence.statusOf(userId);
    const viewerAccepted = (state.members.get(viewerId)?.acceptedAt ?? null) !== null;
    const shares = viewerAccepted && accepted && !eitherBlocked(mine, userId);
    return shares ? this.presence.statusOf(userId) : 'offline';
  }

  /** A member of the channel, or not_found (`member`). */
  private async memberOf(state: ChannelState, userId: string): Promise<MemberState> {
    if (!state.members.has(userId)) await this.store.recheckMember(state, userId);
    const member = state.members.get(userId);
    if (!member) throw AppError.notFound('member');
    return member;
  }

  private publishUpdated(row: Channel, by: Caller): void {
    this.bus.publish('channel.updated', {
      channelId: row.id,
      name: row.name,
      topic: row.topic,
      visibility: row.visibility,
      archivedAt: row.archivedAt,
      by: toUserRef(by),
    });
  }

  private async detailsOf(state: ChannelState, viewerId: string): Promise<ChannelDetails> {
    const conversation = await this.channels.viewFor(state, viewerId);
    let createdBy: UserRef | null = null;
    if (state.createdBy) {
      const known = state.members.get(state.createdBy);
      const user = known ? { id: known.userId, username: known.username } : await this.users.findById(state.createdBy);
      if (user) createdBy = toUserRef(user);
    }
    const archivedAt = state.archivedAt ?? null;
    return {
      id: state.id,
      kind: state.kind,
      name: conversation.name,
      topic: state.topic ?? null,
      visibility: state.visibility,
      memberCount: state.members.size,
      createdBy,
      createdAt: new Date(state.createdAt).toISOString(),
      archived: archivedAt !== null,
      archivedAt: archivedAt === null ? null : new Date(archivedAt).toISOString(),
      role: state.members.get(viewerId)?.role ?? null,
    };
  }
}

/** Member-list cursors are opaque to clients: the last username key of a page, base64url. */
const encodeCursor = (usernameKey: string): string => Buffer.from(usernameKey, 'utf8').toString('base64url');

function decodeCursor(cursor: string): string {
  const key = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (key === '' || encodeCursor(key) !== cursor) {
    throw new AppError('invalid_payload', 'cursor: not a cursor this server gave', { fields: { cursor: ['cursor must be a nextCursor from a previous page'] } });
  }
  return key;
}

/** The `channel.updated` webhook event: the channel as it is now, and who changed it. */
function channelUpdatedEvent(row: Channel, by: UserRef) {
  return webhookEvents.channelUpdated({ ...webhookChannel(row), topic: row.topic, archived: row.archivedAt !== null }, toUserRef(by));
}

/** How the audit log names a user who acted: by id (the username too, for reading). */
const actorOf = (caller: UserRef): string => `user:${caller.id}:${caller.username}`;
