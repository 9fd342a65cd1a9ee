import { ApiResponse } from '@nestjs/swagger';
import { ERROR_RESPONSE_TYPES, HTTP_ERRORS, type HttpErrorStatus } from './error-response.dto.js';

/**
 * An error answer of a route, for OpenAPI: the status, its exact body schema, and a description
 * that starts with the code (`404 not_found: no such channel`). 429 adds its `Retry-After` header.
 */
export function ApiError(status: HttpErrorStatus, why?: string): MethodDecorator & ClassDecorator {
  const { code } = HTTP_ERRORS[status];
  return ApiResponse({
    status,
    type: ERROR_RESPONSE_TYPES[status],
    description: why ? `\`${code}\`: ${why}` : `\`${code}\``,
    ...(status === 429
      ? { headers: { 'Retry-After': { description: 'seconds to wait before retrying', required: true, schema: { type: 'integer', minimum: 1 } } } }
      : {}),
  });
}
