import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IntField } from '../../common/int-field.decorator.js';
import { Optional } from '../../common/optional.decorator.js';
import { StringField } from '../../common/string-field.decorator.js';
import { UUID_PATTERN } from '../../common/uuid.js';

export class AuditQueryDto {
  @ApiPropertyOptional({ description: 'the `nextCursor` of the previous page', format: 'uuid' })
  @Optional() @StringField({ min: 36, max: 36, pattern: new RegExp(UUID_PATTERN), patternMessage: 'cursor must be a nextCursor' })
  cursor?: string;

  @ApiPropertyOptional({ default: 50 })
  @Optional() @IntField({ min: 1, max: 200, query: true })
  limit: number = 50;
}

export class AuditEntryView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' }) at!: string;
  @ApiProperty({ example: 'apikey:3f1e2d1b0a11', description: '`apikey:<first 12 hex of the key\'s SHA-256>` or `user:<id>`' }) actor!: string;
  @ApiProperty({ example: 'user.deactivate' }) action!: string;
  @ApiProperty({ type: String, nullable: true, example: 'user:auth0|5f1e2d' }) target!: string | null;
  @ApiProperty({ type: 'integer', nullable: true, example: 200, description: 'the HTTP status answered (API calls)' }) status!: number | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, example: { method: 'POST', path: '/admin/users/u-1/deactivate' } }) details!: Record<string, unknown> | null;
}

export class AuditPage {
  @ApiProperty({ type: [AuditEntryView], description: 'newest first' }) entries!: AuditEntryView[];
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'pass as `cursor` for the next (older) page; null at the end' }) nextCursor!: string | null;
}
