import { Global, Module } from '@nestjs/common';
import { HttpRateLimitGuard } from './http-rate-limit.guard.js';
import { HttpRateLimiter } from './http-rate-limiter.js';

/**
 * HTTP rate limits (docs/security.md). Routes opt in with `@RateLimited()`, which
 * `@Authenticated()` includes; the guard is instantiated in each controller's module, so the
 * limiter it reads is global.
 */
@Global()
@Module({ providers: [HttpRateLimiter, HttpRateLimitGuard], exports: [HttpRateLimiter, HttpRateLimitGuard] })
export class RateLimitModule {}
