import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ERROR_CODES } from './app-error.js';

/** The contract's error body, for OpenAPI. */
export class ErrorResponseDto {
  @ApiProperty({ example: 404 })
  statusCode!: number;

  @ApiProperty({ enum: ERROR_CODES, example: 'not_found' })
  code!: string;

  @ApiProperty({ example: 'channel not found' })
  message!: string;

  @ApiPropertyOptional({ type: 'integer', example: 60000, description: 'with `rate_limited`: milliseconds to wait before retrying' })
  retryAfterMs?: number;

  @ApiPropertyOptional({ example: { fields: { text: ['text must be longer than or equal to 1 characters'] } } })
  details?: Record<string, unknown>;
}
