import { ArgumentsHost, Catch, Logger, WsExceptionFilter } from '@nestjs/common';
import { AppError, RateLimitedError } from '../common/app-error.js';
import { toHttpError } from '../common/http-exception.filter.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { Connection } from './connection.js';
import { connectionOf } from './session.service.js';
import { frame } from './server-events.js';

/**
 * The WebSocket half of the error mapping: any error of a handler becomes an `error` frame to
 * the connection that sent the frame, echoing its `ref` and `clientMsgId`. The connection stays.
 */
@Catch()
export class WsErrorFilter implements WsExceptionFilter {
  private readonly logger = new Logger('WsErrorFilter');

  constructor(private readonly metrics: MetricsService) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    this.report(connectionOf(ws.getClient()), ws.getData(), exception);
  }

  /**
   * The mapping itself, for Nest's handlers (catch) and for the adapter's fast routes alike:
   * `data` is the frame's payload as it came (its ref and clientMsgId are echoed).
   */
  report(conn: Connection | undefined, payload: unknown, exception: unknown): void {
    const data = payload as { ref?: unknown; clientMsgId?: unknown } | undefined;
    // Same code and message as over HTTP: one domain error, two thin mappings.
    const { code, message, details, status } =
      exception instanceof AppError
        ? { code: exception.code, message: exception.message, details: exception.details, status: exception.status }
        : toHttpError(exception);
    if (status >= 500) this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    this.metrics.errors.inc({ code, transport: 'ws' });
    conn?.send(
      frame('error', {
        code,
        message,
        ...(typeof data?.ref === 'string' ? { ref: data.ref } : {}),
        ...(typeof data?.clientMsgId === 'string' ? { clientMsgId: data.clientMsgId } : {}),
        ...(exception instanceof RateLimitedError ? { retryAfterMs: exception.retryAfterMs } : {}),
        ...(details ? { details } : {}),
      }),
    );
  }
}
