import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { ClientInfo } from './session.store.js';

/** Where a login or refresh comes from, for the session list (cut to the columns' sizes). */
export const Client = createParamDecorator((_: unknown, ctx: ExecutionContext): ClientInfo => {
  const req = ctx.switchToHttp().getRequest<Request>();
  const agent = req.headers['user-agent'];
  return { userAgent: typeof agent === 'string' && agent ? agent.slice(0, 256) : null, ip: req.ip ? req.ip.slice(0, 64) : null };
});
