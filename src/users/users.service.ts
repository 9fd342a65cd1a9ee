import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LRUCache } from 'lru-cache';
import { EntityManager, In, Repository } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { isForeignKeyViolation } from '../database/foreign-key-violation.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { webhookEvents } from '../webhooks/webhook-events.js';
import { WebhookOutbox } from '../webhooks/webhook-outbox.js';
import { SYSTEM_USER_ID } from './system-user.js';
import { User } from './user.entity.js';

/** Profile fields as PATCH /users/me and the server API's upsert take them (undefined: unchanged). */
export interface ProfileChanges {
  displayName?: string | null;
  avatarUrl?: string | null;
  metadata?: Record<string, unknown>;
}

/** A password hash that no password verifies: users made by the server API or a product token. */
export const NO_PASSWORD = '!';

@Injectable()
export class UsersService {
  /**
   * username key → {id, username}. Usernames never change, so a hit is always right; it saves
   * the query behind every `message.send {to}`.
   */
  private readonly byName = new LRUCache<string, { id: string; username: string }>({ max: 50_000 });

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly writer: DatabaseWriter,
    private readonly outbox: WebhookOutbox,
  ) {}

  async create(username: string, passwordHash: string): Promise<User> {
    const user = Object.assign(new User(), {
      id: randomUUID(),
      username,
      usernameKey: username.toLowerCase(),
      passwordHash,
      createdAt: Date.now(),
      lastSeenAt: null,
    });
    try {
      await this.writer.transaction(async (em) => {
        await em.insert(User, user);
        await this.outbox.append(em, [webhookEvents.userCreated({ id: user.id, username, createdAt: new Date(user.createdAt).toISOString() })]);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('conflict', `username "${username}" is taken`);
      throw err;
    }
    return user;
  }

  findById(id: string): Promise<User | null> {
    return this.users.findOneBy({ id });
  }

  /** Anyone's profile by id; the reserved system user is nobody's to look at. */
  async getProfile(id: string): Promise<User> {
    const user = id === SYSTEM_USER_ID ? null : await this.findById(id);
    if (!user) throw AppError.notFound('user');
    return user;
  }

  async updateProfile(userId: string, changes: ProfileChanges): Promise<User> {
    const set = profileColumns(changes);
    if (Object.keys(set).length > 0) await this.writer.transaction((em) => em.update(User, { id: userId }, set));
    return this.getCaller(userId);
  }

  findByExternalId(externalId: string): Promise<User | null> {
    return this.users.findOneBy({ externalId });
  }

  /** At most 500 at a time (one IN query). */
  findByExternalIds(externalIds: string[]): Promise<User[]> {
    return externalIds.length === 0 ? Promise.resolve([]) : this.users.findBy({ externalId: In(externalIds) });
  }

  /**
   * A user known by the product's id, without a password (they come in with tokens the product
   * or the server API gives them). `conflict` when the username or the external id is taken.
   * `alsoDo` runs in the same transaction (the audit entry).
   */
  async createExternal(
    externalId: string,
    username: string,
    profile: ProfileChanges,
    alsoDo: (em: EntityManager, user: User) => Promise<unknown> = async () => undefined,
  ): Promise<User> {
    const user = Object.assign(new User(), {
      id: randomUUID(),
      username,
      usernameKey: username.toLowerCase(),
      passwordHash: NO_PASSWORD,
      createdAt: Date.now(),
      lastSeenAt: null,
      displayName: null,
      avatarUrl: null,
      metadata: null,
      externalId,
      deactivatedAt: null,
      ...profileColumns(profile),
    });
    try {
      await this.writer.transaction(async (em) => {
        await em.insert(User, user);
        await alsoDo(em, user);
        // Last: the outbox's lock asks it (see WebhookOutbox.append).
        await this.outbox.append(em, [
          webhookEvents.userCreated({ id: user.id, username, createdAt: new Date(user.createdAt).toISOString(), externalId, displayName: user.displayName, avatarUrl: user.avatarUrl }),
        ]);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('conflict', `username "${username}" or external id is taken`);
      throw err;
    }
    return user;
  }

  /** Marks a user deactivated inside the caller's transaction (which also ends their sessions). */
  async markDeactivated(em: EntityManager, userId: string, at: number): Promise<void> {
    await em.createQueryBuilder().update(User).set({ deactivatedAt: at }).where('id = :userId AND deactivatedAt IS NULL', { userId }).execute();
  }

  async getById(id: string): Promise<User> {
    const user = await this.findById(id);
    if (!user) throw AppError.notFound('user');
    return user;
  }

  findByUsername(username: string): Promise<User | null> {
    return this.users.findOneBy({ usernameKey: username.toLowerCase() });
  }

  /** What resolveUsername gives when it has it in memory; undefined otherwise (no query). */
  cachedUsername(username: string): { id: string; username: string } | undefined {
    return this.byName.get(username.toLowerCase());
  }

  /** The id and spelling of a username, from memory when seen before. */
  async resolveUsername(username: string): Promise<{ id: string; username: string } | null> {
    const hit = this.cachedUsername(username);
    if (hit) return hit;
    const key = username.toLowerCase();
    const user = await this.findByUsername(key);
    if (!user || user.deactivatedAt !== null) return null; // deactivated (or the system user): nobody to reach
    const ref = { id: user.id, username: user.username };
    this.byName.set(key, ref);
    return ref;
  }

  /** Users by lower-cased username, in chunks of one IN query each. */
  async findByUsernames(usernames: string[]): Promise<Map<string, User>> {
    const found = new Map<string, User>();
    for (let i = 0; i < usernames.length; i += 500) {
      const keys = usernames.slice(i, i + 500).map((u) => u.toLowerCase());
      for (const u of await this.users.findBy({ usernameKey: In(keys) })) if (u.deactivatedAt === null) found.set(u.usernameKey, u);
    }
    return found;
  }

  /** With the hash: only the login path asks for it. */
  findForLogin(username: string): Promise<User | null> {
    return this.users
      .createQueryBuilder('u')
      .addSelect('u.passwordHash')
      .where('u.usernameKey = :key', { key: username.toLowerCase() })
      .getOne();
  }

  /** With the hash, by id: changing one's password checks the current one. */
  findWithPasswordHash(id: string): Promise<User | null> {
    return this.users.createQueryBuilder('u').addSelect('u.passwordHash').where('u.id = :id', { id }).getOne();
  }

  /** Inside the caller's transaction: the password change commits with the sessions it ends. */
  async setPasswordHash(em: EntityManager, userId: string, passwordHash: string): Promise<void> {
    const result = await em.update(User, { id: userId }, { passwordHash });
    if (result.affected === 0) throw UsersService.callerGone();
  }

  /** The caller's own row: a valid token whose user is gone answers 401, not 404. */
  async getCaller(id: string): Promise<User> {
    const user = await this.findById(id);
    if (!user) throw UsersService.callerGone();
    return user;
  }

  /**
   * For a write of the caller's that failed: a foreign key naming a user who is gone means the
   * token outlived its user (401, not a 500). Anything else is rethrown as it was.
   */
  async rethrowIfCallerGone(err: unknown, callerId: string): Promise<never> {
    if (isForeignKeyViolation(err) && !(await this.findById(callerId))) throw UsersService.callerGone();
    throw err;
  }

  static callerGone(): AppError {
    return new AppError('unauthorized', 'the account no longer exists');
  }

  /** Prefix search on the case-insensitive name; the caller is left out of the results. */
  search(query: string, excludeId: string, limit = 20): Promise<User[]> {
    const escaped = query.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c);
    return this.users
      .createQueryBuilder('u')
      .where("u.usernameKey LIKE :q ESCAPE '\\'", { q: `${escaped}%` })
      .andWhere('u.id != :me', { me: excludeId })
      .andWhere('u.deactivatedAt IS NULL')
      .orderBy('u.usernameKey', 'ASC')
      .limit(limit)
      .getMany();
  }

  async touchLastSeen(userId: string, at: number): Promise<void> {
    await this.writer.transaction((em) => em.update(User, { id: userId }, { lastSeenAt: at }));
  }
}

/** The columns a profile change sets (metadata stored as its JSON text; {} is stored as null). */
function profileColumns(changes: ProfileChanges): Partial<Pick<User, 'displayName' | 'avatarUrl' | 'metadata'>> {
  const set: Partial<Pick<User, 'displayName' | 'avatarUrl' | 'metadata'>> = {};
  if (changes.displayName !== undefined) set.displayName = changes.displayName;
  if (changes.avatarUrl !== undefined) set.avatarUrl = changes.avatarUrl;
  if (changes.metadata !== undefined) set.metadata = Object.keys(changes.metadata).length > 0 ? JSON.stringify(changes.metadata) : null;
  return set;
}
