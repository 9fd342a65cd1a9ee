import { CallHandler, ExecutionContext, HttpException, Injectable, Logger, NestInterceptor, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { catchError, concatMap, from, map, Observable, throwError } from 'rxjs';
import { AuditService } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import type { ApiKeyRequest } from './api-key.guard.js';

const AUDIT_ACTION = 'parley:audit-action';

/** The stable name a server API route is audited under (`api.<name>`). */
export const AuditAs = (action: string) => SetMetadata(AUDIT_ACTION, action);

/**
 * Every call of the server API that passed its key is audited: who (the key's name), what (the
 * route's action), on what (the external id or channel id of the path), and the status answered.
 * The entry is written before the answer leaves, so a client that reads the log next sees it.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Audit');

  constructor(
    private readonly audit: AuditService,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const req = http.getRequest<ApiKeyRequest>();
    const res = http.getResponse<Response>();
    const action = `api.${this.reflector.get<string | undefined>(AUDIT_ACTION, context.getHandler()) ?? context.getHandler().name}`;
    const params = req.params as Record<string, string>;
    const target = params.externalId !== undefined ? `user:${params.externalId}` : params.id !== undefined ? `channel:${params.id}` : null;
    // The call has done what it did by now: an entry that cannot be written is logged (with
    // everything it would have said), and the answer stays the call's own.
    const record = (status: number) => {
      const entry = { actor: req.apiKeyActor ?? 'apikey:unknown', action, target, status, details: { method: req.method, path: req.path } };
      return this.audit.record(entry).catch((err: Error) => this.logger.error(`audit entry not written (${err.message}): ${JSON.stringify(entry)}`));
    };
    return next.handle().pipe(
      concatMap((body) => from(record(res.statusCode)).pipe(map(() => body))),
      catchError((err: unknown) => {
        const status = err instanceof AppError ? err.status : err instanceof HttpException ? err.getStatus() : 500;
        return from(record(status)).pipe(concatMap(() => throwError(() => err)));
      }),
    );
  }
}
