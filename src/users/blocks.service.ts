import { Injectable, Logger } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { Block } from './block.entity.js';
import type { BlockView } from './dto/block.dto.js';
import { toUserRef, type UserRef } from './user.mapper.js';
import { UsersService } from './users.service.js';

/** A user's blocks, both ways: whom they blocked, and who blocked them. */
export interface BlockRecord {
  blocked: Set<string>;
  blockedBy: Set<string>;
}

/** Whether the owner of `record` and `other` blocked each other, either way. */
export const eitherBlocked = (record: BlockRecord, other: string): boolean => record.blocked.has(other) || record.blockedBy.has(other);

/** Users whose blocks are kept in memory at most (connected users' are always loaded). */
const MAX_CACHED_USERS = 100_000;

/**
 * Users decide who reaches them: a block stops DMs between the two, presence either way, and
 * invitations to channels from the blocked user.
 *
 * Fan-out asks "is there a block between these two?" for every presence frame, so the blocks of
 * the users that matter are kept in memory: loaded per user when their session starts (or when
 * they open a DM, send, create a channel), kept current on every instance by the `block.changed`
 * changes the bus brings, read again after the bus was cut. A user whose blocks are not loaded
 * answers "unknown", and callers treat that as blocked: a cache miss may hide presence for a
 * moment, never show it to someone blocked.
 */
@Injectable()
export class BlocksService {
  private readonly logger = new Logger('Blocks');
  private readonly records = new LRUCache<string, BlockRecord>({ max: MAX_CACHED_USERS });
  private readonly loading = new Map<string, Promise<BlockRecord>>();
  /** Bumped by every change that concerns the user, so a load that a change overtook reads again. */
  private readonly versions = new LRUCache<string, number>({ max: MAX_CACHED_USERS });

  constructor(
    private readonly db: DataSource,
    private readonly writer: DatabaseWriter,
    private readonly users: UsersService,
    private readonly bus: FanoutBus,
  ) {
    bus.on('block.changed', ({ blocker, blocked, blocking }) => {
      this.bump(blocker.id);
      this.bump(blocked.id);
      const a = this.records.peek(blocker.id);
      const b = this.records.peek(blocked.id);
      if (blocking) {
        a?.blocked.add(blocked.id);
        b?.blockedBy.add(blocker.id);
      } else {
        a?.blocked.delete(blocked.id);
        b?.blockedBy.delete(blocker.id);
      }
    }, 'state');
    bus.onResync(() => {
      this.reloadAll().catch((err: Error) => this.logger.warn(`reloading blocks failed: ${err.message}`));
    });
  }

  async block(caller: UserRef, targetId: string): Promise<BlockView> {
    const target = await this.target(caller, targetId);
    const row = Object.assign(new Block(), { blockerId: caller.id, blockedId: target.id, createdAt: Date.now() });
    try {
      await this.writer.transaction((em) => em.insert(Block, row));
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // Blocked already: the same answer as the first time, and nothing changed to announce.
      const existing = await this.db.getRepository(Block).findOneBy({ blockerId: caller.id, blockedId: target.id });
      return { user: toUserRef(target), blockedAt: new Date(existing?.createdAt ?? row.createdAt).toISOString() };
    }
    this.bus.publish('block.changed', { blocker: toUserRef(caller), blocked: toUserRef(target), blocking: true });
    return { user: toUserRef(target), blockedAt: new Date(row.createdAt).toISOString() };
  }

  async unblock(caller: UserRef, targetId: string): Promise<void> {
    const target = await this.target(caller, targetId);
    const result = await this.writer.transaction((em) => em.delete(Block, { blockerId: caller.id, blockedId: target.id }));
    if (result.affected) this.bus.publish('block.changed', { blocker: toUserRef(caller), blocked: toUserRef(target), blocking: false });
  }

  /** The users the caller blocked, most recent first. */
  async list(userId: string): Promise<BlockView[]> {
    const rows = await this.db
      .createQueryBuilder()
      .select(['u.id AS id', 'u.username AS username', 'b.created_at AS created_at'])
      .from('blocks', 'b')
      .innerJoin('users', 'u', 'u.id = b.blocked_id')
      .where('b.blocker_id = :userId', { userId })
      .orderBy('b.created_at', 'DESC')
      .getRawMany<{ id: string; username: string; created_at: string | number }>();
    return rows.map((r) => ({ user: { id: r.id, username: r.username }, blockedAt: new Date(Number(r.created_at)).toISOString() }));
  }

  /** A user's blocks both ways when in memory (as `of` gives them), without loading: the send path's no-await check. */
  cached(userId: string): BlockRecord | undefined {
    return this.records.get(userId);
  }

  /** A user's blocks both ways, from memory when loaded (then kept current by the bus). */
  of(userId: string): Promise<BlockRecord> {
    const cached = this.cached(userId);
    if (cached) return Promise.resolve(cached);
    let pending = this.loading.get(userId);
    if (!pending) {
      pending = this.load(userId).finally(() => this.loading.delete(userId));
      this.loading.set(userId, pending);
    }
    return pending;
  }

  /**
   * True when either of the two blocked the other; undefined when neither one's blocks are in
   * memory (callers treat that as blocked). Synchronous: fan-out asks it per frame. A miss starts
   * a load, so the next question is answered.
   */
  between(a: string, b: string): boolean | undefined {
    const ra = this.records.peek(a);
    if (ra) return eitherBlocked(ra, b);
    const rb = this.records.peek(b);
    if (rb) return eitherBlocked(rb, a);
    void this.of(a).catch(() => undefined);
    return undefined;
  }

  /** True when `a` blocked `b`; undefined when neither one's blocks are in memory. */
  hasBlocked(a: string, b: string): boolean | undefined {
    const ra = this.records.peek(a);
    if (ra) return ra.blocked.has(b);
    const rb = this.records.peek(b);
    if (rb) return rb.blockedBy.has(a);
    return undefined;
  }

  private async target(caller: UserRef, targetId: string): Promise<UserRef> {
    if (targetId === caller.id) throw new AppError('invalid_payload', 'you cannot block yourself');
    const target = await this.users.findById(targetId);
    if (!target) throw AppError.notFound('user');
    return toUserRef(target);
  }

  private bump(userId: string): void {
    this.versions.set(userId, (this.versions.get(userId) ?? 0) + 1);
  }

  private async load(userId: string): Promise<BlockRecord> {
    for (let attempt = 0; ; attempt++) {
      const version = this.versions.get(userId) ?? 0;
      const record = (await this.read([userId])).get(userId)!;
      if ((this.versions.get(userId) ?? 0) === version) {
        this.records.set(userId, record);
        return record;
      }
      // Overtaken by changes again and again: answer this once, but never keep what may be stale.
      if (attempt >= 5) return record;
    }
  }

  /** After the bus was cut: every loaded user's blocks read again (changes may have been missed). */
  private async reloadAll(): Promise<void> {
    const ids = [...this.records.keys()];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const versions = chunk.map((id) => this.versions.get(id) ?? 0);
      const fresh = await this.read(chunk);
      chunk.forEach((id, k) => {
        // A change landed meanwhile: drop the entry, the next question loads it again.
        if ((this.versions.get(id) ?? 0) !== versions[k]) this.records.delete(id);
        else if (this.records.has(id)) this.records.set(id, fresh.get(id)!);
      });
    }
  }

  /** The blocks of these users, both ways (at most 500: one query). */
  private async read(userIds: string[]): Promise<Map<string, BlockRecord>> {
    const out = new Map<string, BlockRecord>(userIds.map((id) => [id, { blocked: new Set<string>(), blockedBy: new Set<string>() }]));
    const rows = await this.db
      .createQueryBuilder()
      .select(['b.blocker_id AS blocker_id', 'b.blocked_id AS blocked_id'])
      .from('blocks', 'b')
      .where('b.blocker_id IN (:...ids) OR b.blocked_id IN (:...ids)', { ids: userIds })
      .getRawMany<{ blocker_id: string; blocked_id: string }>();
    for (const r of rows) {
      out.get(r.blocker_id)?.blocked.add(r.blocked_id);
      out.get(r.blocked_id)?.blockedBy.add(r.blocker_id);
    }
    return out;
  }
}
