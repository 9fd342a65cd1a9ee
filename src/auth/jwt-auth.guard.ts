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
    const token = bearerToken(req.headers.authorization);
    if (this.auth.isProductToken(token)) {
      return this.auth.verifyToken(token).then((session) => {
        req.user = session;
        return true;
      });
    }
    const { recheck, ...session } = this.auth.verifySession(token);
    req.user = session;
    if (!recheck) return true;
    return this.auth.verifyToken(bearerToken(req.headers.authorization)).then(() => true);
  }
}
