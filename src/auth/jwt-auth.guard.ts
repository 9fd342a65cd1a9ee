import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AuthService, AuthSession, bearerToken } from './auth.service.js';

export type AuthenticatedRequest = Request & { user: AuthSession };

@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(private readonly auth: AuthService) {}

  /** Synchronous (no query) unless memory cannot vouch for the token's session: see RevokedSessions. */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const { recheck, ...session } = this.auth.verifySession(bearerToken(req.headers.authorization));
    req.user = session;
    if (!recheck) return true;
    return this.auth.verifyToken(bearerToken(req.headers.authorization)).then(() => true);
  }
}
