import { CallHandler, ExecutionContext, HttpException, Injectable, NestInterceptor, SetMetadata } from '@nestjs/common';
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
    const record = (status: number) =>
      this.audit.record({ actor: req.apiKeyActor ?? 'apikey:unknown', action, target, status, details: { method: req.method, path: req.path } });
    return next.handle().pipe(
      concatMap((body) => from(record(res.statusCode)).pipe(map(() => body))),
      catchError((err: unknown) => {
        const status = err instanceof AppError ? err.status : err instanceof HttpException ? err.getStatus() : 500;
        return from(record(status).catch(() => undefined)).pipe(concatMap(() => throwError(() => err)));
      }),
    );
  }
}
