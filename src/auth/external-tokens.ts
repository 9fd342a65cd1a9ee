import { createHash, randomBytes } from 'node:crypto';
import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

type RemoteKeys = ReturnType<typeof createRemoteJWKSet>;
import type { KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';
import { isUniqueViolation } from '../database/unique-violation.js';
import { USERNAME_PATTERN } from './dto/credentials.dto.js';
import type { User } from '../users/user.entity.js';
import { EXTERNAL_ID_PATTERN } from '../users/system-user.js';
import { UsersService } from '../users/users.service.js';
import { SessionRevocations } from './session-revocations.js';
import { Session } from './session.entity.js';
import { SessionStore } from './session.store.js';
import type { AuthSession } from './sessions.service.js';

/** The product's signatures Parley accepts: asymmetric only, so nothing Parley holds can forge one. */
const ALGORITHMS = ['RS256', 'ES256'];
/** At most one JWKS request per this long, however many unknown `kid`s arrive (a flood of forged tokens). */
const JWKS_COOLDOWN_MS = 5_000;
/** Keys are fetched again this often in the background, even when every `kid` is known (a key removed from the set stops working). */
const JWKS_REFRESH_MS = 10 * 60_000;
/** A verified token is trusted from memory this long; then its user and session are read again. */
const VERIFIED_TTL_MS = 60_000;
const CLOCK_TOLERANCE_SECONDS = 5;

const EXTERNAL_ID = EXTERNAL_ID_PATTERN;

/**
 * Product-issued tokens (AUTH_JWKS_URL or AUTH_PUBLIC_KEY, AUTH_ISSUER, AUTH_AUDIENCE): RS256 or
 * ES256 JWTs whose `sub` is the product's id of the user. The user is made on first use.
 *
 * Each token becomes a Parley session of its own (its id derived from the token's hash, so every
 * instance finds the same row), made on first use: ended sessions, deactivation, WebSocket
 * tickets, the session list and the per-frame revocation check then work for product tokens as
 * for Parley's own, with no second mechanism.
 */
@Injectable()
export class ExternalTokens implements OnModuleDestroy {
  private readonly logger = new Logger('ExternalTokens');
  private readonly keys: JWTVerifyGetKey | KeyObject | null = null;
  private refresher: NodeJS.Timeout | null = null;
  private readonly verified = new LRUCache<string, AuthSession>({ max: 50_000, ttl: VERIFIED_TTL_MS });

  constructor(
    private readonly config: AppConfig,
    private readonly users: UsersService,
    private readonly store: SessionStore,
    private readonly revocations: SessionRevocations,
  ) {
    const auth = config.embed.externalAuth;
    if (!auth) return;
    if (!auth.jwksUrl) {
      this.keys = auth.publicKey;
      return;
    }
    // jose's remote key set caches the keys and fetches them again on a `kid` it does not know
    // (after a rotation), at most once per cooldown. Its own expiry is off: an expired set is
    // fetched on the request path, and a failed fetch would then refuse every token while the
    // product's key server is down. The refresh happens here instead, in the background: when it
    // fails, the keys already known keep working.
    const keys: RemoteKeys = createRemoteJWKSet(auth.jwksUrl, { cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: Infinity, timeoutDuration: 5_000 });
    this.keys = keys;
    this.refresher = setInterval(() => {
      keys.reload().catch((err: Error) => this.logger.warn(`refreshing the product's keys failed (the known ones stay): ${err.message}`));
    }, JWKS_REFRESH_MS);
    this.refresher.unref();
  }

  onModuleDestroy(): void {
    if (this.refresher) clearInterval(this.refresher);
  }

  get enabled(): boolean {
    return this.keys !== null;
  }

  /**
   * A token that is not Parley's own (its header names another algorithm than HS256) when product
   * tokens are configured: those go through `verify`. Anything else is Parley's to check (and an
   * HS256 token signed with the product's public key fails there, as any forged token).
   */
  claims(token: string | null | undefined): boolean {
    if (!this.keys || !token) return false;
    try {
      return decodeProtectedHeader(token).alg !== 'HS256';
    } catch {
      return false;
    }
  }

  async verify(token: string): Promise<AuthSession> {
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.verified.get(key);
    if (hit) {
      if (Date.now() >= hit.expiresAt) throw new AppError('unauthorized', 'access token expired');
      if (this.revocations.has(hit.sessionId)) throw new AppError('unauthorized', 'the session has ended; log in again');
      return hit;
    }
    const payload = await this.check(token);
    const user = await this.userFor(payload);
    if (user.deactivatedAt !== null) throw new AppError('unauthorized', 'the account is deactivated');
    const sessionId = sessionIdOf(key);
    const now = Date.now();
    const inserted = await this.store.insertForActiveUser(
      Object.assign(new Session(), {
        id: sessionId,
        userId: user.id,
        refreshHash: createHash('sha256').update(randomBytes(32)).digest('hex'), // no refresh: the product renews its tokens
        createdAt: now,
        lastUsedAt: now,
        userAgent: null,
        ip: null,
        revokedAt: null,
      }),
      { ifAbsent: true },
    );
    if (!inserted) throw new AppError('unauthorized', 'the account is deactivated');
    if (!(await this.revocations.isLive(sessionId, user.id))) throw new AppError('unauthorized', 'the session has ended; log in again');
    const session: AuthSession = { id: user.id, username: user.username, sessionId, expiresAt: payload.exp! * 1000 };
    this.verified.set(key, session);
    return session;
  }

  private async check(token: string): Promise<JWTPayload & { sub: string; exp: number }> {
    const auth = this.config.embed.externalAuth!;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys as JWTVerifyGetKey, {
        algorithms: ALGORITHMS,
        issuer: auth.issuer,
        audience: auth.audience,
        requiredClaims: ['sub', 'exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new AppError('unauthorized', 'access token expired');
      if (err instanceof errors.JWKSTimeout || (err instanceof errors.JOSEError && err.code === 'ERR_JWKS_INVALID')) {
        this.logger.warn(`product keys unavailable: ${(err as Error).message}`);
      }
      throw new AppError('unauthorized', 'invalid access token');
    }
    if (typeof payload.sub !== 'string' || !EXTERNAL_ID.test(payload.sub)) throw new AppError('unauthorized', 'invalid access token: bad sub');
    return payload as JWTPayload & { sub: string; exp: number };
  }

  /** The user of `sub`, made on first use with a valid, unique username from the token's name. */
  private async userFor(payload: JWTPayload & { sub: string }): Promise<User> {
    const existing = await this.users.findByExternalId(payload.sub);
    if (existing) return existing;
    const base = usernameFrom(payload.preferred_username ?? payload.name);
    for (let attempt = 0; attempt < 6; attempt++) {
      const username = attempt === 0 ? base : `${base.slice(0, 27)}-${randomBytes(2).toString('hex')}`;
      try {
        return await this.users.createExternal(payload.sub, username, {});
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'conflict') && !isUniqueViolation(err)) throw err;
        const raced = await this.users.findByExternalId(payload.sub); // made meanwhile (another request, another instance)
        if (raced) return raced;
      }
    }
    throw new AppError('conflict', 'could not find a free username for this user; retry');
  }
}

/** A valid username from a display name: letters and digits kept (accents dropped), the rest `_`. */
export function usernameFrom(claim: unknown): string {
  const raw = typeof claim === 'string' ? claim.normalize('NFKD').replace(/[\u0300-\u036f]/g, '') : '';
  let name = raw.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 32);
  if (name.length < 3) name = `user${name}`.slice(0, 32).padEnd(3, '_');
  return USERNAME_PATTERN.test(name) ? name : 'user';
}

/** The session id of a token: its hash in UUID form (version 8, the RFC variant). */
function sessionIdOf(tokenHash: string): string {
  const h = tokenHash.slice(0, 32).split('');
  h[12] = '8';
  h[16] = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}
