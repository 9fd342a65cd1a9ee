import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { AppError } from '../common/app-error.js';
import { HttpRateLimiter } from '../rate-limit/http-rate-limiter.js';
import { UsersService } from '../users/users.service.js';
import type { AuthResultDto, CredentialsDto, LoginDto } from './dto/credentials.dto.js';
import { ExternalTokens } from './external-tokens.js';
import { PasswordHasher } from './password-hasher.js';
import { SessionRevocations } from './session-revocations.js';
import type { ClientInfo } from './session.store.js';
import { AuthSession, SessionsService } from './sessions.service.js';

/** Who is calling, as proven by a verified token. */
export interface AuthUser {
  id: string;
  username: string;
}

export type { AuthSession } from './sessions.service.js';

/** A verified access token; `recheck` when memory cannot vouch that its session is live. */
export interface VerifiedToken extends AuthSession {
  recheck: boolean;
}

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly jwt: JwtService,
    private readonly sessions: SessionsService,
    private readonly revocations: SessionRevocations,
    private readonly limiter: HttpRateLimiter,
    private readonly external: ExternalTokens,
  ) {}

  async register(dto: CredentialsDto, client: ClientInfo): Promise<AuthResultDto> {
    if (await this.users.findByUsername(dto.username)) {
      throw new AppError('conflict', `username "${dto.username}" is taken`);
    }
    const user = await this.users.create(dto.username, await this.hasher.hash(dto.password));
    return this.sessions.start(user, client);
  }

  async login(dto: LoginDto, client: ClientInfo): Promise<AuthResultDto> {
    const user = await this.users.findForLogin(dto.username);
    // Users of the server API or of product tokens have no password ('!'): never verified.
    const ok = await this.hasher.verify(user?.passwordHash ?? null, dto.password);
    if (!user || !ok) {
      await this.limiter.loginFailed(client.ip, dto.username); // the next attempt waits longer
      throw new AppError('unauthorized', 'wrong username or password');
    }
    await this.limiter.loginSucceeded(client.ip, dto.username);
    if (user.deactivatedAt !== null) throw new AppError('unauthorized', 'the account is deactivated');
    return this.sessions.start(user, client);
  }

  /** A new password, and every other session of the user ends (their sockets close everywhere). */
  async changePassword(caller: AuthSession, currentPassword: string, newPassword: string): Promise<void> {
    const user = await this.users.findWithPasswordHash(caller.id);
    if (!user) throw UsersService.callerGone();
    if (!(await this.hasher.verify(user.passwordHash, currentPassword))) throw new AppError('unauthorized', 'wrong password');
    const hash = await this.hasher.hash(newPassword);
    await this.sessions.endOthers(caller, (em) => this.users.setPasswordHash(em, caller.id, hash));
  }

  /**
   * The one token check of the project: HTTP guard and WebSocket handshake both call it.
   * Synchronous on purpose, so the handshake can decide before the upgrade completes; an ended
   * session is found in memory (SessionRevocations), not by a query.
   * Only HS256 is accepted: `alg: none` and algorithm-confusion tokens fail here. A token must
   * expire (`exp`) and name its session (`sid`): one that cannot be ended is not accepted.
   */
  verifySession(token: string | undefined | null): VerifiedToken {
    if (!token) throw new AppError('unauthorized', 'missing access token');
    let claims: { sub?: unknown; username?: unknown; sid?: unknown; exp?: unknown };
    try {
      claims = this.jwt.verify(token, { algorithms: ['HS256'] });
    } catch (err) {
      const expired = (err as Error).name === 'TokenExpiredError';
      throw new AppError('unauthorized', expired ? 'access token expired' : 'invalid access token');
    }
    if (typeof claims.sub !== 'string' || typeof claims.username !== 'string' || typeof claims.sid !== 'string') {
      throw new AppError('unauthorized', 'invalid access token');
    }
    if (typeof claims.exp !== 'number') throw new AppError('unauthorized', 'access token without expiry');
    const state = this.revocations.check(claims.sid);
    if (state === 'revoked') throw new AppError('unauthorized', 'the session has ended; log in again');
    return { id: claims.sub, username: claims.username, sessionId: claims.sid, expiresAt: claims.exp * 1000, recheck: state === 'unknown' };
  }

  /** True when the token is the product's (AUTH_JWKS_URL / AUTH_PUBLIC_KEY): `verifyToken` checks it, asynchronously. */
  isProductToken(token: string | undefined | null): boolean {
    return this.external.claims(token);
  }

  /**
   * Any access token: Parley's own (verifySession, then the database's word when memory could not
   * vouch for the session) or the product's (signature, issuer, audience, expiry; user on first use).
   */
  async verifyToken(token: string | undefined | null): Promise<AuthSession> {
    if (this.external.claims(token)) return this.external.verify(token!);
    const { recheck, ...session } = this.verifySession(token);
    if (recheck && !(await this.revocations.isLive(session.sessionId, session.id))) {
      throw new AppError('unauthorized', 'the session has ended; log in again');
    }
    return session;
  }

  /** The `?ticket=` handshake: asynchronous, since a ticket is used up in the database. */
  verifyTicket(ticket: string): Promise<AuthSession> {
    return this.sessions.redeemTicket(ticket);
  }
}

/** `Bearer <token>` → token; anything else → null. */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}
