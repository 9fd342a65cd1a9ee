import type { Type } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { type ErrorCode } from './app-error.js';

/** The quotas (QUOTA_* settings) an answer may name in `details.quota`. */
export const QUOTA_NAMES = ['members_per_request', 'channels_created_per_user', 'channels_per_user'] as const;

/** `details` of `invalid_payload`: each refused field (a dotted path such as `members.3`) and why. */
export class InvalidPayloadDetails {
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'array', items: { type: 'string' } },
    example: { text: ['text must be at least 1 characters'] },
  })
  fields!: Record<string, string[]>;

  @ApiPropertyOptional({ enum: ['members_per_request'], description: 'the quota the request is over' })
  quota?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, description: 'that quota' })
  limit?: number;
}

/** Why a `forbidden` that is no quota can never succeed as it stands: the channel is archived (read-only). */
export const FORBIDDEN_REASONS = ['archived'] as const;

/**
 * `details` of a `forbidden`, when it has any: a quota (which one, its limit, and who is at it),
 * or a `reason` (an archived channel).
 */
export class ForbiddenDetails {
  @ApiPropertyOptional({ enum: QUOTA_NAMES, description: 'the quota the request is over' }) quota?: string;
  @ApiPropertyOptional({ type: 'integer', minimum: 1, description: 'that quota' }) limit?: number;
  @ApiPropertyOptional({ enum: FORBIDDEN_REASONS, description: '`archived`: the channel is archived, read-only for good' }) reason?: string;

  @ApiPropertyOptional({ type: [String], description: 'channels_per_user: the listed members who are at it' })
  usernames?: string[];
}

/** `details` of a `not_found` that names what is missing (members of a new channel): by username, or by external id (server API). */
export class NotFoundDetails {
  @ApiPropertyOptional({ type: [String], example: ['carol'], description: 'the usernames that do not exist' })
  usernames?: string[];

  @ApiPropertyOptional({ type: [String], example: ['auth0|5f1e2d'], description: 'server API: the external ids of no (active) user' })
  externalIds?: string[];
}

/** `details` of an `unavailable` readiness answer. */
export class UnavailableDetails {
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string', enum: ['ok', 'down', 'draining'] },
    example: { database: 'ok', redis: 'down' },
    description: 'each dependency checked (`database`, `redis`, or `server` while shutting down)',
  })
  checks!: Record<string, 'ok' | 'down' | 'draining'>;
}

/**
 * The HTTP error statuses Parley answers, each with the one stable code it carries and the
 * fields only it has. The filter (http-exception.filter.ts) decides the status from the code,
 * so a status never carries another code.
 */
export const HTTP_ERRORS = {
  400: { code: 'invalid_payload', schema: 'InvalidPayloadError', details: InvalidPayloadDetails },
  401: { code: 'unauthorized', schema: 'UnauthorizedError' },
  403: { code: 'forbidden', schema: 'ForbiddenError', details: ForbiddenDetails },
  404: { code: 'not_found', schema: 'NotFoundError', details: NotFoundDetails },
  409: { code: 'conflict', schema: 'ConflictError' },
  413: { code: 'too_large', schema: 'TooLargeError' },
  415: { code: 'invalid_payload', schema: 'UnsupportedBodyError' },
  429: { code: 'rate_limited', schema: 'RateLimitedError', retryAfterMs: true },
  503: { code: 'unavailable', schema: 'UnavailableError', details: UnavailableDetails },
} as const satisfies Record<number, { code: ErrorCode; schema: string; details?: Type; retryAfterMs?: true }>;

export type HttpErrorStatus = keyof typeof HTTP_ERRORS;

/**
 * One schema per status, `{statusCode, code, message}` plus `details` or `retryAfterMs` where
 * that status has them: the exact body, so a validator catches a status answered with the wrong
 * code or a field that does not belong. Classes made here, so @nestjs/swagger names and registers them.
 */
function errorSchema(status: HttpErrorStatus): Type {
  const { code, schema } = HTTP_ERRORS[status];
  const spec = HTTP_ERRORS[status] as { details?: Type; retryAfterMs?: true };
  const cls = class {};
  Object.defineProperty(cls, 'name', { value: schema });
  const prop = (name: string, decorator: PropertyDecorator) => decorator(cls.prototype, name);
  prop('statusCode', ApiProperty({ type: 'integer', enum: [status], example: status }));
  prop('code', ApiProperty({ type: 'string', enum: [code], example: code }));
  prop('message', ApiProperty({ type: 'string', description: 'for people; clients act on `code`' }));
  if (spec.details) prop('details', ApiPropertyOptional({ type: spec.details }));
  if (spec.retryAfterMs) {
    prop('retryAfterMs', ApiProperty({ type: 'integer', minimum: 0, example: 60000, description: 'milliseconds to wait before retrying' }));
  }
  return cls;
}

export const ERROR_RESPONSE_TYPES = Object.fromEntries(
  Object.keys(HTTP_ERRORS).map((s) => [s, errorSchema(Number(s) as HttpErrorStatus)]),
) as Record<HttpErrorStatus, Type>;
