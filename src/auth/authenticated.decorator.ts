import { applyDecorators, createParamDecorator, ExecutionContext, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { RateLimited } from '../rate-limit/http-rate-limit.guard.js';
import type { AuthenticatedRequest } from './jwt-auth.guard.js';
import { JwtAuthGuard } from './jwt-auth.guard.js';

/**
 * Guards + OpenAPI metadata in one: every protected controller says `@Authenticated()`. The rate
 * limit runs after the token check, per user: GETs count as reads, the rest as writes.
 */
export function Authenticated() {
  return applyDecorators(
    UseGuards(JwtAuthGuard),
    RateLimited(),
    ApiBearerAuth(),
    ApiResponse({ status: 401, type: ErrorResponseDto, description: '`unauthorized`: missing, invalid or expired token' }),
  );
}

/** The verified caller, set by JwtAuthGuard. */
export const CurrentUser = createParamDecorator(
  (_: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<AuthenticatedRequest>().user,
);
