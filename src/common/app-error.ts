/**
 * One domain error for both transports. Services throw AppError with a stable code; the HTTP
 * filter and the WebSocket filter each map it in a few lines (see http-exception.filter.ts and
 * realtime/ws-exception.filter.ts), so a client sees the same code whichever way it talks to us.
 */
export const ERROR_CODES = [
  'bad_json',
  'unknown_event',
  'invalid_payload',
  'unauthorized',
  'forbidden',
  'not_found',
  'rate_limited',
  'too_large',
  'conflict',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  bad_json: 400,
  unknown_event: 400,
  invalid_payload: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  rate_limited: 429,
  too_large: 413,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

export const CODE_BY_HTTP_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_payload',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'too_large',
  415: 'invalid_payload', // a body in a charset or encoding we do not read
  429: 'rate_limited',
  503: 'unavailable',
};

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }

  get status(): number {
    return HTTP_STATUS_BY_CODE[this.code];
  }

  static notFound(what: string): AppError {
    return new AppError('not_found', `${what} not found`);
  }

  static forbidden(message: string): AppError {
    return new AppError('forbidden', message);
  }

  /** A write to an archived (read-only) channel: one refusal for every path. */
  static archived(): AppError {
    return new AppError('forbidden', 'this channel is archived (read-only)', { reason: 'archived' });
  }
}

/**
 * `rate_limited` with the time to wait: both transports put `retryAfterMs` beside `code`, and
 * HTTP adds `Retry-After` (seconds). Made without a stack trace: a flood makes many of them.
 */
export class RateLimitedError extends AppError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super('rate_limited', message);
  }

  static create(message: string, retryAfterMs: number): RateLimitedError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new RateLimitedError(message, retryAfterMs);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}
