import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import type { MetricsService } from '../metrics/metrics.service.js';
import { AppError, CODE_BY_HTTP_STATUS, ErrorCode, RateLimitedError } from './app-error.js';

/** Maps every error to the contract's HTTP shape `{statusCode, code, message, details?}`. */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpExceptionFilter');

  constructor(private readonly metrics?: MetricsService) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const res = host.switchToHttp().getResponse<Response>();
    const { status, code, message, details, retryAfterMs } = toHttpError(exception);
    // An AppError at 5xx is an expected state (not ready, a dependency away): a line, no stack.
    if (status >= 500 && exception instanceof AppError) this.logger.warn(`${code}: ${message}`);
    else if (status >= 500) this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    this.metrics?.errors.inc({ code, transport: 'http' });
    if (res.headersSent) return;
    if (retryAfterMs !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    res.status(status).json({
      statusCode: status,
      code,
      message,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(details ? { details } : {}),
    });
  }
}

export function toHttpError(exception: unknown): {
  status: number;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  retryAfterMs?: number;
} {
  if (exception instanceof RateLimitedError) {
    return { status: exception.status, code: exception.code, message: exception.message, retryAfterMs: exception.retryAfterMs };
  }
  if (exception instanceof AppError) {
    return { status: exception.status, code: exception.code, message: exception.message, details: exception.details };
  }
  // body-parser's errors: malformed JSON (the express adapter wraps it in a BadRequestException
  // whose cause is the SyntaxError) and oversized bodies.
  const bodyErr = exception as { type?: string; status?: number; message?: string; cause?: unknown };
  if (bodyErr?.type === 'entity.parse.failed' || bodyErr?.cause instanceof SyntaxError) {
    return { status: 400, code: 'invalid_payload', message: 'request body is not valid JSON' };
  }
  if (bodyErr?.type === 'entity.too.large') {
    return { status: 413, code: 'too_large', message: 'request body is too large' };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const code = CODE_BY_HTTP_STATUS[status] ?? (status >= 500 ? 'internal' : 'invalid_payload');
    const body = exception.getResponse();
    const message =
      typeof body === 'string' ? body : String((body as { message?: unknown }).message ?? exception.message);
    return { status, code, message };
  }
  return { status: 500, code: 'internal', message: 'internal server error' };
}
