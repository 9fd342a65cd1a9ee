import { timingSafeEqual } from 'node:crypto';
import { applyDecorators, CanActivate, ExecutionContext, Injectable, Logger, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiSecurity } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiError } from '../common/api-error.decorator.js';
import { AppError } from '../common/app-error.js';
import { AppConfig, sha256Buffer } from '../config/app-config.js';
import { HttpRateLimiter } from '../rate-limit/http-rate-limiter.js';
import { AuditInterceptor } from './audit.interceptor.js';

export type ApiKeyRequest = Request & { apiKeyActor?: string };

/** Failed keys count against this name in the login back-off (per client address). */
const BACKOFF_ACCOUNT = '\u0000api-key';

/**
 * The server API's credential: `Authorization: ApiKey <key>`, one of PARLEY_API_KEYS. The keys are
 * kept as SHA-256 hashes only; a key shown is hashed and compared with every one of them in
 * constant time (timingSafeEqual on equal-length digests, no early exit), so neither the keys
 * nor their prefixes leak through timing. Wrong keys from an address earn it the login back-off's
 * growing waits (429 `rate_limited`).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly logger = new Logger('ApiKeys');

  constructor(
    private readonly config: AppConfig,
    private readonly limiter: HttpRateLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<ApiKeyRequest>();
    const ip = req.ip ?? req.socket?.remoteAddress ?? null;
    const m = typeof req.headers.authorization === 'string' ? /^ApiKey\s+(\S+)\s*$/i.exec(req.headers.authorization) : null;
    if (!m) throw new AppError('unauthorized', 'missing API key: send Authorization: ApiKey <key>');
    await this.limiter.checkBackoff(ip, BACKOFF_ACCOUNT, 'too many wrong API keys');
    const shown = sha256Buffer(m[1]);
    let match = false;
    for (const hash of this.config.embed.apiKeyHashes) match = timingSafeEqual(hash, shown) || match;
    if (!match) {
      await this.limiter.loginFailed(ip, BACKOFF_ACCOUNT);
      this.logger.warn(`wrong API key from ${ip ?? 'unknown address'}`);
      throw new AppError('unauthorized', this.config.embed.apiKeyHashes.length === 0 ? 'the server API is off (PARLEY_API_KEYS is not set)' : 'wrong API key');
    }
    // Names the key in the audit log without revealing it.
    req.apiKeyActor = `apikey:${shown.toString('hex').slice(0, 12)}`;
    return true;
  }
}

/** Every /admin route: the key, the audit entry of the call, and their OpenAPI metadata. */
export function ApiKeyAuth() {
  return applyDecorators(
    UseGuards(ApiKeyGuard),
    UseInterceptors(AuditInterceptor),
    ApiSecurity('apiKey'),
    ApiError(401, 'no API key, or a wrong one'),
    ApiError(429, 'too many wrong API keys from this address: wait `retryAfterMs`'),
  );
}
