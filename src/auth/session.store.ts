import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager, In, IsNull } from 'typeorm';
import { DatabaseWriter } from '../database/database-writer.js';
import { User } from '../users/user.entity.js';
import { Session } from './session.entity.js';
import { WsTicket } from './ws-ticket.entity.js';

/** A session with its user's name: what an access token is made of. */
export interface SessionOwner {
  sessionId: string;
  userId: string;
  username: string;
}

/**
 * Where the `sessions` and `ws_tickets` tables are read and written. Every change that must be
 * right across instances is one conditional UPDATE whose affected-row count decides (a refresh
 * rotates only the hash it was shown; a ticket is used once), so no lock and no cache is needed.
 */
@Injectable()
export class SessionStore {
  constructor(
    private readonly db: DataSource,
    private readonly writer: DatabaseWriter,
  ) {}

  async insert(session: Session): Promise<void> {
    await this.writer.transaction((em) => em.insert(Session, session));
  }

  /**
   * A session of a user who must not be deactivated (a minted token's; a product token's, which
   * may exist already: made on first use on any instance). False, and nothing inserted, when the
   * user is deactivated. The no-op UPDATE takes the user's row lock, which a deactivation takes
   * too: either the deactivation commits first and this sees it, or this commits first and the
   * deactivation's read of the user's sessions (a later statement) finds this one and ends it.
   */
  async insertForActiveUser(session: Session, opts: { ifAbsent?: boolean } = {}): Promise<boolean> {
    return this.writer.transaction(async (em) => {
      const active = await em
        .createQueryBuilder()
        .update(User)
        .set({ deactivatedAt: () => 'deactivated_at' })
        .where('id = :id AND deactivatedAt IS NULL', { id: session.userId })
        .execute();
      if (active.affected !== 1) return false;
      const insert = em.createQueryBuilder().insert().into(Session).values(session);
      await (opts.ifAbsent ? insert.orIgnore() : insert).execute();
      return true;
    });
  }

  /**
   * Ends every live session of a user, with `alsoDo` in the same transaction (the deactivation
   * and its audit entry): returns the ids ended, exactly those (see revokeOthers).
   */
  revokeAll(userId: string, now: number, alsoDo: (em: EntityManager) => Promise<unknown>): Promise<string[]> {
    return this.revokeOthers(userId, '', now, alsoDo);
  }

  /** With the refresh hash (not selected by default). Null when the row is gone. */
  find(sessionId: string): Promise<Session | null> {
    return this.db
      .getRepository(Session)
      .createQueryBuilder('s')
      .addSelect('s.refreshHash')
      .where('s.id = :sessionId', { sessionId })
      .getOne();
  }

  owner(sessionId: string): Promise<SessionOwner | null> {
    return this.db
      .createQueryBuilder()
      .select(['s.id AS "sessionId"', 's.user_id AS "userId"', 'u.username AS "username"'])
      .from(Session, 's')
      .innerJoin(User, 'u', 'u.id = s.user_id')
      .where('s.id = :sessionId', { sessionId })
      .getRawOne<SessionOwner>()
      .then((r) => r ?? null);
  }

  /**
   * Rotation: the new hash replaces `oldHash` only if it is still the current one, the session
   * is live and was used since `usedSince`. Two refreshes with one token: exactly one wins.
   */
  async rotate(sessionId: string, oldHash: string, newHash: string, now: number, usedSince: number, client: ClientInfo): Promise<boolean> {
    const result = await this.writer.transaction((em) =>
      em
        .createQueryBuilder()
        .update(Session)
        .set({ refreshHash: newHash, lastUsedAt: now, userAgent: client.userAgent, ip: client.ip })
        .where('id = :sessionId AND refreshHash = :oldHash AND revokedAt IS NULL AND lastUsedAt >= :usedSince', { sessionId, oldHash, usedSince })
        .execute(),
    );
    return result.affected === 1;
  }

  /** Ends one session (of `userId`, when given); false when it was not live. */
  async revoke(sessionId: string, now: number, userId?: string): Promise<boolean> {
    const result = await this.writer.transaction((em) =>
      em
        .createQueryBuilder()
        .update(Session)
        .set({ revokedAt: now })
        .where(`id = :sessionId AND revokedAt IS NULL${userId ? ' AND userId = :userId' : ''}`, userId ? { sessionId, userId } : { sessionId })
        .execute(),
    );
    return result.affected === 1;
  }

  /**
   * Ends every live session of a user but one, with `alsoDo` in the same transaction (the new
   * password hash): returns the ids ended. The ids are read first and only those are ended, so
   * the ids announced are exactly the ids ended, even if a login lands meanwhile.
   */
  revokeOthers(userId: string, keepSessionId: string, now: number, alsoDo: (em: EntityManager) => Promise<unknown>): Promise<string[]> {
    return this.writer.transaction(async (em) => {
      await alsoDo(em);
      const rows = await em.getRepository(Session).find({ select: { id: true }, where: { userId, revokedAt: IsNull() } });
      const ids = rows.map((r) => r.id).filter((id) => id !== keepSessionId);
      for (let i = 0; i < ids.length; i += 500) {
        await em.update(Session, { id: In(ids.slice(i, i + 500)), revokedAt: IsNull() }, { revokedAt: now });
      }
      return ids;
    });
  }

  /** A user's sessions that are neither ended nor idle since `usedSince`, most recently used first. */
  live(userId: string, usedSince: number): Promise<Session[]> {
    return this.db
      .getRepository(Session)
      .createQueryBuilder('s')
      .where('s.userId = :userId AND s.revokedAt IS NULL AND s.lastUsedAt >= :usedSince', { userId, usedSince })
      .orderBy('s.lastUsedAt', 'DESC')
      .addOrderBy('s.id', 'ASC')
      .getMany();
  }

  /** Sessions ended at or after `since`, oldest first: the revoked set of an instance that starts. */
  async revokedSince(since: number): Promise<{ id: string; revokedAt: number }[]> {
    const rows = await this.db
      .getRepository(Session)
      .createQueryBuilder('s')
      .select(['s.id', 's.revokedAt'])
      .where('s.revokedAt >= :since', { since })
      .orderBy('s.revokedAt', 'ASC')
      .getMany();
    return rows.map((r) => ({ id: r.id, revokedAt: r.revokedAt! }));
  }

  async insertTicket(ticket: WsTicket): Promise<void> {
    await this.writer.transaction((em) => em.insert(WsTicket, ticket));
  }

  /**
   * Uses a ticket: one UPDATE that only an unused, unexpired ticket passes, so of any number of
   * handshakes on any number of instances exactly one gets it. Then who it belongs to.
   */
  async consumeTicket(ticketHash: string, now: number): Promise<(SessionOwner & { tokenExpiresAt: number; revokedAt: number | null }) | null> {
    const result = await this.writer.transaction((em) =>
      em
        .createQueryBuilder()
        .update(WsTicket)
        .set({ usedAt: now })
        .where('ticketHash = :ticketHash AND usedAt IS NULL AND expiresAt > :now', { ticketHash, now })
        .execute(),
    );
    if (result.affected !== 1) return null;
    const row = await this.db
      .createQueryBuilder()
      .select(['s.id AS "sessionId"', 's.user_id AS "userId"', 'u.username AS "username"'])
      .addSelect(['t.token_expires_at AS "tokenExpiresAt"', 's.revoked_at AS "revokedAt"'])
      .from(WsTicket, 't')
      .innerJoin(Session, 's', 's.id = t.session_id')
      .innerJoin(User, 'u', 'u.id = s.user_id')
      .where('t.ticket_hash = :ticketHash', { ticketHash })
      .getRawOne<SessionOwner & { tokenExpiresAt: string | number; revokedAt: string | number | null }>();
    if (!row) return null;
    return { ...row, tokenExpiresAt: Number(row.tokenExpiresAt), revokedAt: row.revokedAt === null ? null : Number(row.revokedAt) };
  }

  /**
   * Housekeeping: tickets past their time, and sessions that ended (or went idle) so long ago
   * that no token of theirs can still be valid.
   */
  async sweep(now: number, tokenTtlMs: number, refreshTtlMs: number): Promise<void> {
    await this.writer.transaction(async (em) => {
      await em.createQueryBuilder().delete().from(WsTicket).where('expiresAt < :cutoff', { cutoff: now - 60_000 }).execute();
      await em
        .createQueryBuilder()
        .delete()
        .from(Session)
        .where('revokedAt < :ended OR lastUsedAt < :idle', { ended: now - tokenTtlMs, idle: now - refreshTtlMs - tokenTtlMs })
        .execute();
    });
  }
}

/** Where a login or refresh came from, as shown in the session list. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
}
