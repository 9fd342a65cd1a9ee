import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource, In } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { SessionsService } from '../auth/sessions.service.js';
import { Channel } from '../channels/channel.entity.js';
import { ChannelStateStore, type MemberState } from '../channels/channel-state.store.js';
import { Membership } from '../channels/membership.entity.js';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import type { SendResult } from '../messages/dto/message.dto.js';
import { MessageWriter } from '../messages/message-writer.js';
import { MessagesService } from '../messages/messages.service.js';
import { SYSTEM_USER } from '../users/system-user.js';
import type { User } from '../users/user.entity.js';
import { parseMetadata, toUserRef } from '../users/user.mapper.js';
import { UsersService } from '../users/users.service.js';
import type {
  AddMembersDto,
  AddMembersResult,
  AdminChannelView,
  AdminMessageDto,
  AdminUserView,
  CreateAdminChannelDto,
  TokenView,
  UpsertUserDto,
} from './dto/admin.dto.js';

const toAdminUser = (u: User): AdminUserView => ({
  id: u.id,
  externalId: u.externalId!,
  username: u.username,
  displayName: u.displayName ?? null,
  avatarUrl: u.avatarUrl ?? null,
  metadata: parseMetadata(u.metadata ?? null),
  createdAt: new Date(u.createdAt).toISOString(),
  deactivatedAt: u.deactivatedAt === null ? null : new Date(u.deactivatedAt).toISOString(),
});

/**
 * The server API: what a product's backend does with its users and channels. The caller is
 * trusted (it holds an API key), so there are no per-user quotas or invitations here; every call
 * is audited (AuditInterceptor), and deactivation also in its own transaction.
 */
@Injectable()
export class AdminService {
  constructor(
    private readonly db: DataSource,
    private readonly writer: DatabaseWriter,
    private readonly users: UsersService,
    private readonly sessions: SessionsService,
    private readonly channels: ChannelStateStore,
    private readonly messages: MessagesService,
    private readonly messageWriter: MessageWriter,
    private readonly bus: FanoutBus,
    private readonly audit: AuditService,
    private readonly config: AppConfig,
  ) {}

  /** Creates the user (created: true) or updates the profile fields given. */
  async upsertUser(externalId: string, dto: UpsertUserDto): Promise<{ user: AdminUserView; created: boolean }> {
    const profile = { displayName: dto.displayName, avatarUrl: dto.avatarUrl, metadata: dto.metadata };
    const existing = await this.users.findByExternalId(externalId);
    if (existing) {
      if (existing.username.toLowerCase() !== dto.username.toLowerCase()) {
        throw new AppError('conflict', `this user is "${existing.username}": usernames never change`);
      }
      return { user: toAdminUser(await this.users.updateProfile(existing.id, profile)), created: false };
    }
    try {
      return { user: toAdminUser(await this.users.createExternal(externalId, dto.username, profile)), created: true };
    } catch (err) {
      // Made meanwhile by a concurrent upsert of the same id: that one is the user; update it.
      const raced = err instanceof AppError && err.code === 'conflict' ? await this.users.findByExternalId(externalId) : null;
      if (raced && raced.username.toLowerCase() === dto.username.toLowerCase()) {
        return { user: toAdminUser(await this.users.updateProfile(raced.id, profile)), created: false };
      }
      throw err;
    }
  }

  async mintToken(externalId: string, ttl: number | undefined, client: { userAgent: string | null; ip: string | null }): Promise<TokenView> {
    const user = await this.requireUser(externalId);
    if (user.deactivatedAt !== null) throw AppError.forbidden('the user is deactivated');
    return this.sessions.mint(user, Math.min(ttl ?? this.config.jwtTtlSeconds, this.config.jwtTtlSeconds), client);
  }

  /**
   * Ends every session of the user (sockets close with 1008 on every instance, tokens are
   * refused), and marks them deactivated so that no session starts again: not by password, a
   * minted token or a product token. Idempotent.
   */
  async deactivate(externalId: string, actor: string): Promise<AdminUserView> {
    const user = await this.requireUser(externalId);
    await this.sessions.endAll(user.id, async (em) => {
      await this.users.markDeactivated(em, user.id, Date.now());
      await this.audit.record({ actor, action: 'user.deactivated', target: `user:${externalId}`, details: { userId: user.id } }, em);
    });
    return toAdminUser(await this.requireUser(externalId));
  }

  async createChannel(dto: CreateAdminChannelDto): Promise<AdminChannelView> {
    const members = await this.requireUsers(dto.members ?? []);
    const now = Date.now();
    const channel = Object.assign(new Channel(), {
      id: randomUUID(),
      kind: 'channel',
      name: dto.name,
      nameKey: dto.visibility === 'public' ? dto.name.toLowerCase() : null,
      visibility: dto.visibility,
      dmKey: null,
      headSeq: 0,
      createdAt: now,
    });
    try {
      await this.writer.transaction(async (em) => {
        await em.insert(Channel, channel);
        for (let i = 0; i < members.length; i += 100) {
          await em.insert(Membership, members.slice(i, i + 100).map((u) => membershipRow(channel.id, u.id, 0, now)));
        }
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('conflict', `channel name "${dto.name}" is taken by a public channel`);
      throw err;
    }
    if (members.length > 0) this.bus.publish('conversation.created', { channelId: channel.id, userIds: members.map((u) => u.id) });
    return { id: channel.id, name: dto.name, visibility: dto.visibility, memberCount: members.length, createdAt: new Date(now).toISOString() };
  }

  /**
   * Adds members (accepted at once: the product decided), with the channel's history before
   * them counted as read. Those already in are left alone.
   */
  async addMembers(channelId: string, dto: AddMembersDto): Promise<AddMembersResult> {
    const users = await this.requireUsers(dto.externalIds);
    const channel = await this.requireChannel(channelId);
    const now = Date.now();
    const added: MemberState[] = [];
    await this.writer.transaction(async (em) => {
      const row = await em.getRepository(Channel).findOneByOrFail({ id: channel.id });
      const already = new Set(
        (await em.getRepository(Membership).find({ select: { userId: true }, where: { channelId, userId: In(users.map((u) => u.id)) } })).map((m) => m.userId),
      );
      const fresh = users.filter((u) => !already.has(u.id));
      for (let i = 0; i < fresh.length; i += 100) {
        await em.insert(Membership, fresh.slice(i, i + 100).map((u) => membershipRow(channelId, u.id, row.headSeq, now)));
      }
      for (const u of fresh) added.push({ userId: u.id, username: u.username, role: 'member', lastReadSeq: row.headSeq, joinedAt: now, acceptedAt: now });
    });
    for (const member of added) this.bus.publish('member.joined', { channelId, member });
    return { channelId, added: added.map((m) => toUserRef({ id: m.userId, username: m.username })) };
  }

  /** As a member (`as`), with every rule of a send; or a system message, which any channel takes. */
  async postMessage(channelId: string, dto: AdminMessageDto): Promise<SendResult> {
    const clientMsgId = dto.clientMsgId ?? `admin-${randomUUID()}`;
    if (dto.as !== undefined) {
      const user = await this.requireUser(dto.as);
      if (user.deactivatedAt !== null) throw AppError.forbidden('the user is deactivated');
      return this.messages.send(toUserRef(user), { channelId, text: dto.text, clientMsgId });
    }
    await this.requireChannel(channelId);
    const outcome = await this.messageWriter.write({ channelId, sender: SYSTEM_USER, text: dto.text, clientMsgId, system: true });
    // Every system message has the one sender, so a clientMsgId used in another channel finds
    // that channel's message: say so rather than answer a message of another channel.
    if (outcome.duplicate && outcome.message.channelId !== channelId) {
      throw new AppError('conflict', 'this clientMsgId was used for a system message in another channel');
    }
    return outcome;
  }

  private async requireUser(externalId: string): Promise<User> {
    const user = await this.users.findByExternalId(externalId);
    if (!user) throw AppError.notFound('user');
    return user;
  }

  /** Users by external id, in the order given, without repeats; any unknown or deactivated: 404 naming them. */
  private async requireUsers(externalIds: string[]): Promise<User[]> {
    const wanted = [...new Set(externalIds)];
    const found = new Map<string, User>();
    for (let i = 0; i < wanted.length; i += 500) {
      const chunk = wanted.slice(i, i + 500);
      for (const u of await this.users.findByExternalIds(chunk)) if (u.deactivatedAt === null) found.set(u.externalId!, u);
    }
    const missing = wanted.filter((id) => !found.has(id));
    if (missing.length > 0) throw new AppError('not_found', `unknown or deactivated user(s): ${missing.slice(0, 20).join(', ')}`, { externalIds: missing });
    return wanted.map((id) => found.get(id)!);
  }

  /** A group channel (a DM's two members are its whole point: 404 as for no channel). */
  private async requireChannel(channelId: string) {
    const state = await this.channels.get(channelId);
    if (!state || state.kind !== 'channel') throw AppError.notFound('channel');
    return state;
  }
}

const membershipRow = (channelId: string, userId: string, lastReadSeq: number, now: number) => ({
  channelId,
  userId,
  role: 'member' as const,
  lastReadSeq,
  joinedAt: now,
  acceptedAt: now,
});
