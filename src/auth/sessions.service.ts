import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Injectable, OnModuleDestroy, OnModuleInit, Logger } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import type { EntityManager } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { toUserRef } from '../users/user.mapper.js';
import { UsersService } from '../users/users.service.js';
import type { AuthResultDto } from './dto/credentials.dto.js';
import type { SessionView, WsTicketDto } from './dto/session.dto.js';
import { Session } from './session.entity.js';
import { ClientInfo, SessionStore } from './session.store.js';
import { WsTicket } from './ws-ticket.entity.js';

/** Who is calling, with the session their token belongs to and when that token expires. */
export interface AuthSession {
  id: string;
  username: string;
  sessionId: string;
  /** epoch ms */
  expiresAt: number;
}

/** `<session id>.<43 base64url characters>`: the session is found by id, the secret by its hash. */
const REFRESH_TOKEN = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.[A-Za-z0-9_-]{43}$/;
const TICKET = /^[A-Za-z0-9_-]{43}$/;
const SWEEP_INTERVAL_MS = 5 * 60_000;

/** Refresh tokens and tickets are 256 random bits: a plain SHA-256 is all the hashing they need. */
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const secret = () => randomBytes(32).toString('base64url');

const sessionEnded = () => new AppError('unauthorized', 'the session has ended; log in again');

/**
 * Sessions: one per login, kept going by a refresh token that rotates on every use. Ending one
 * (logout, from the list, a password change, a reused refresh token) is a committed change on
 * the bus: every instance refuses its access tokens from then on and closes its sockets.
 */
@Injectable()
export class SessionsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Sessions');
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: SessionStore,
    private readonly users: UsersService,
    private readonly jwt: JwtService,
    private readonly bus: FanoutBus,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.sweeper = setInterval(() => {
      this.store
        .sweep(Date.now(), this.config.jwtTtlSeconds * 1000, this.config.refreshTokenTtlSeconds * 1000)
        .catch((err: Error) => this.logger.warn(`session sweep failed: ${err.message}`));
    }, SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  onModuleDestroy(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  /** A new session (login, registration) and its first tokens. */
  async start(user: { id: string; username: string }, client: ClientInfo): Promise<AuthResultDto> {
    const now = Date.now();
    const id = randomUUID();
    const refreshToken = `${id}.${secret()}`;
    const session = Object.assign(new Session(), {
      id,
      userId: user.id,
      refreshHash: sha256(refreshToken),
      createdAt: now,
      lastUsedAt: now,
      userAgent: client.userAgent,
      ip: client.ip,
      revokedAt: null,
    });
    await this.store.insert(session).catch((err) => this.users.rethrowIfCallerGone(err, user.id));
    return this.tokens(user, id, refreshToken);
  }

  /**
   * A session made by the server API for a user of the product (`POST /admin/users/:id/tokens`):
   * an access token of `ttlSeconds` (at most JWT_TTL, so ending the session ends it in time on
   * every instance), and no refresh token: the product's backend mints a new one instead.
   */
  async mint(user: { id: string; username: string }, ttlSeconds: number, client: ClientInfo): Promise<{ accessToken: string; expiresIn: number }> {
    const now = Date.now();
    const id = randomUUID();
    const session = Object.assign(new Session(), {
      id,
      userId: user.id,
      refreshHash: sha256(secret()), // a refresh token nobody holds
      createdAt: now,
      lastUsedAt: now,
      userAgent: client.userAgent,
      ip: client.ip,
      revokedAt: null,
    });
    if (!(await this.store.insertForActiveUser(session))) throw AppError.forbidden('the user is deactivated');
    const accessToken = this.jwt.sign({ sub: user.id, username: user.username, sid: id }, { expiresIn: ttlSeconds });
    return { accessToken, expiresIn: ttlSeconds };
  }

  /**
   * Deactivation: every session of the user ends in the transaction that marks them deactivated
   * (with `alsoDo`: the audit entry), and every instance refuses their tokens and closes their
   * sockets. Sessions made afterwards are refused at their start (a deactivated user's row).
   */
  async endAll(userId: string, alsoDo: (em: EntityManager) => Promise<unknown>): Promise<string[]> {
    const ended = await this.store.revokeAll(userId, Date.now(), alsoDo);
    if (ended.length > 0) this.bus.publish('session.ended', { userId, sessionIds: ended });
    return ended;
  }

  /**
   * Rotation. The token shown must be the session's current one; one that was current once
   * (already rotated) means two parties hold the session's tokens, one of them a thief: the
   * whole session ends, and both log in again.
   */
  async refresh(refreshToken: string, client: ClientInfo): Promise<AuthResultDto> {
    const sessionId = REFRESH_TOKEN.exec(refreshToken)?.[1];
    if (!sessionId) throw new AppError('unauthorized', 'invalid refresh token');
    const now = Date.now();
    const usedSince = now - this.config.refreshTokenTtlSeconds * 1000;
    const next = `${sessionId}.${secret()}`;
    if (await this.store.rotate(sessionId, sha256(refreshToken), sha256(next), now, usedSince, client)) {
      const owner = await this.store.owner(sessionId);
      if (!owner) throw sessionEnded(); // the user was deleted meanwhile
      return this.tokens({ id: owner.userId, username: owner.username }, sessionId, next);
    }
    const session = await this.store.find(sessionId);
    if (!session) throw new AppError('unauthorized', 'invalid refresh token');
    if (session.revokedAt !== null) throw sessionEnded();
    if (session.refreshHash !== sha256(refreshToken)) {
      this.logger.warn(`refresh token reused for session ${sessionId}: ending it`);
      await this.endSessions(session.userId, [sessionId], (id) => this.store.revoke(id, now));
      throw new AppError('unauthorized', 'refresh token already used; the session has ended');
    }
    throw new AppError('unauthorized', 'refresh token expired; log in again');
  }

  /** Logout: the caller's own session. */
  async logout(caller: AuthSession): Promise<void> {
    await this.endSessions(caller.id, [caller.sessionId], (id) => this.store.revoke(id, Date.now(), caller.id));
  }

  /** Ends one of the caller's sessions; another user's (or an unknown id) is not_found. */
  async end(caller: AuthSession, sessionId: string): Promise<void> {
    const session = await this.store.find(sessionId);
    if (!session || session.userId !== caller.id) throw AppError.notFound('session');
    await this.endSessions(caller.id, [sessionId], (id) => this.store.revoke(id, Date.now(), caller.id));
  }

  /** Ends every session of the caller but the current one, with `alsoDo` in the same transaction. */
  async endOthers(caller: AuthSession, alsoDo: (em: EntityManager) => Promise<unknown>): Promise<void> {
    const ended = await this.store.revokeOthers(caller.id, caller.sessionId, Date.now(), alsoDo);
    if (ended.length > 0) this.bus.publish('session.ended', { userId: caller.id, sessionIds: ended });
  }

  async list(caller: AuthSession): Promise<SessionView[]> {
    const sessions = await this.store.live(caller.id, Date.now() - this.config.refreshTokenTtlSeconds * 1000);
    return sessions.map((s) => ({
      id: s.id,
      createdAt: new Date(s.createdAt).toISOString(),
      lastUsedAt: new Date(s.lastUsedAt).toISOString(),
      userAgent: s.userAgent,
      ip: s.ip,
      current: s.id === caller.sessionId,
    }));
  }

  /**
   * A ticket for one WebSocket handshake within WS_TICKET_TTL, so a browser puts a short-lived,
   * single-use secret in the URL instead of its access token. The connection it opens belongs
   * to the caller's session and ends when the caller's token would have.
   */
  async issueTicket(caller: AuthSession): Promise<WsTicketDto> {
    const now = Date.now();
    const ticket = secret();
    const ttlMs = Math.min(this.config.wsTicketTtlSeconds * 1000, caller.expiresAt - now);
    const row = Object.assign(new WsTicket(), {
      ticketHash: sha256(ticket),
      sessionId: caller.sessionId,
      tokenExpiresAt: caller.expiresAt,
      expiresAt: now + ttlMs,
      usedAt: null,
      createdAt: now,
    });
    await this.store.insertTicket(row).catch((err) => this.users.rethrowIfCallerGone(err, caller.id));
    return { ticket, expiresIn: Math.max(1, Math.floor(ttlMs / 1000)) };
  }

  /** The handshake's side of a ticket: used once, then never again, on any instance. */
  async redeemTicket(ticket: string): Promise<AuthSession> {
    if (!TICKET.test(ticket)) throw new AppError('unauthorized', 'invalid ticket');
    const used = await this.store.consumeTicket(sha256(ticket), Date.now());
    if (!used) throw new AppError('unauthorized', 'invalid, used or expired ticket');
    if (used.revokedAt !== null) throw sessionEnded();
    return { id: used.userId, username: used.username, sessionId: used.sessionId, expiresAt: used.tokenExpiresAt };
  }

  private tokens(user: { id: string; username: string }, sessionId: string, refreshToken: string): AuthResultDto {
    const accessToken = this.jwt.sign({ sub: user.id, username: user.username, sid: sessionId });
    return { user: toUserRef(user), accessToken, refreshToken, expiresIn: this.config.jwtTtlSeconds };
  }

  /** Ends the sessions `revoke` reports as ended, and tells every instance. */
  private async endSessions(userId: string, sessionIds: string[], revoke: (id: string) => Promise<boolean>): Promise<void> {
    const ended: string[] = [];
    for (const id of sessionIds) if (await revoke(id)) ended.push(id);
    if (ended.length > 0) this.bus.publish('session.ended', { userId, sessionIds: ended });
  }
}
