import { applyDecorators, CanActivate, ExecutionContext, Injectable, SetMetadata, UseGuards } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiResponse } from '@nestjs/swagger';
import type { Request } from 'express';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { HttpRateLimiter, type LimitedRequest, type RouteClass } from './http-rate-limiter.js';

const ROUTE_CLASS = 'parley:rate-limit-class';

/**
 * Counts the request against its route's limits. The class is the route's `@RateLimited(...)`;
 * without one a GET or HEAD is a read and anything else a write, so every route behind
 * `@Authenticated()` is limited per user without a word.
 */
@Injectable()
export class HttpRateLimitGuard implements CanActivate {
  constructor(
    private readonly limiter: HttpRateLimiter,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request & LimitedRequest>();
    const routes =
      this.reflector.get<RouteClass | undefined>(ROUTE_CLASS, context.getHandler()) ??
      (req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write');
    await this.limiter.check(routes, req);
    return true;
  }
}

const TOO_MANY = ApiResponse({
  status: 429,
  type: ErrorResponseDto,
  description: '`rate_limited`: over an HTTP rate limit (docs/security.md); `retryAfterMs` says when to retry',
  headers: { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' } } },
});

/** The rate-limit guard, the class the route counts as (else derived from its method), and its 429. */
export function RateLimited(routes?: RouteClass) {
  return applyDecorators(UseGuards(HttpRateLimitGuard), ...(routes ? [SetMetadata(ROUTE_CLASS, routes)] : []), TOO_MANY);
}
