import type { LoggerService } from '@nestjs/common';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';

/** Drops `token` from logged URLs: browsers put the JWT in the WebSocket URL. */
export function redactUrl(url: string | undefined): string | undefined {
  return url?.replace(/([?&]token=)[^&]*/gi, '$1[redacted]');
}

export const REDACTED_PATHS = ['req.headers.authorization', 'req.headers.cookie'];

export function createLogger(level: string): Logger {
  // Tokens never reach the logs; message texts are never logged at all.
  return pino({ level, redact: REDACTED_PATHS });
}

/** One access-log line per HTTP request, without the request body or the token. */
export function httpLogger(logger: Logger) {
  return pinoHttp({
    logger,
    serializers: {
      req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}

/**
 * Nest's logger on pino, as structured JSON. Written here rather than taken from nestjs-pino:
 * that module keeps a per-request AsyncLocalStorage, and on Node 20 an active AsyncLocalStorage
 * turns on promise hooks for the whole process, which cost the WebSocket hot path about a third
 * of its CPU (measured with --cpu-prof; see docs/benchmarks.md).
 */
export class PinoLoggerService implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
  fatal(message: unknown, context?: string): void {
    this.logger.fatal({ context }, String(message));
  }
}
