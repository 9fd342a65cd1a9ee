import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';
import { toUserRef } from '../users/user.mapper.js';
import { UsersService } from '../users/users.service.js';
import type { AuthResultDto, CredentialsDto } from './dto/credentials.dto.js';
import { PasswordHasher } from './password-hasher.js';

/** Who is calling, as proven by a verified token. */
export interface AuthUser {
  id: string;
  username: string;
}

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly jwt: JwtService,
    private readonly config: AppConfig,
  ) {}

  async register(dto: CredentialsDto): Promise<AuthResultDto> {
    if (await this.users.findByUsername(dto.username)) {
      throw new AppError('conflict', `username "${dto.username}" is taken`);
    }
    const user = await this.users.create(dto.username, await this.hasher.hash(dto.password));
    return this.issue(user);
  }

  async login(dto: CredentialsDto): Promise<AuthResultDto> {
    const user = await this.users.findForLogin(dto.username);
    const ok = await this.hasher.verify(user?.passwordHash ?? null, dto.password);
    if (!user || !ok) throw new AppError('unauthorized', 'wrong username or password');
    return this.issue(user);
  }

  issue(user: AuthUser): AuthResultDto {
    const accessToken = this.jwt.sign({ sub: user.id, username: user.username });
    return { user: toUserRef(user), accessToken, expiresIn: this.config.jwtTtlSeconds };
  }

  /**
   * The one token check of the project: HTTP guard and WebSocket handshake both call it.
   * Synchronous on purpose, so the handshake can decide before the upgrade completes.
   * Only HS256 is accepted: `alg: none` and algorithm-confusion tokens fail here.
   */
  verifyToken(token: string | undefined | null): AuthUser {
    return this.verifySession(token).user;
  }

  /** verifyToken, plus when the token expires (epoch ms): a WebSocket session ends then. */
  verifySession(token: string | undefined | null): { user: AuthUser; expiresAt: number | null } {
    if (!token) throw new AppError('unauthorized', 'missing access token');
    let claims: { sub?: unknown; username?: unknown; exp?: unknown };
    try {
      claims = this.jwt.verify(token, { algorithms: ['HS256'] });
    } catch (err) {
      const expired = (err as Error).name === 'TokenExpiredError';
      throw new AppError('unauthorized', expired ? 'access token expired' : 'invalid access token');
    }
    if (typeof claims.sub !== 'string' || typeof claims.username !== 'string') {
      throw new AppError('unauthorized', 'invalid access token');
    }
    const expiresAt = typeof claims.exp === 'number' ? claims.exp * 1000 : null;
    return { user: { id: claims.sub, username: claims.username }, expiresAt };
  }
}

/** `Bearer <token>` → token; anything else → null. */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}
