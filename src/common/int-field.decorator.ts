import { applyDecorators } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';

/**
 * The largest seq: seqs are PostgreSQL `integer` columns, and a cursor past this made the query
 * fail with a 500 ("out of range for type integer"; found by test/fuzz.e2e-spec.ts).
 */
export const MAX_SEQ = 2 ** 31 - 1;

/**
 * An integer field, for validation and for OpenAPI alike (`type: integer` with its bounds: the
 * rule is written once). The type is checked first, so `"seq": "5"` is told it is not an integer
 * (not that it "must not be less than 0"). Query strings arrive as text: `query` reads plain
 * decimal digits only, so `limit=0x10` or `limit=1e2` is refused instead of becoming 16 or 100.
 * Whether the field is optional stays with `@ApiPropertyOptional` / `@IsOptional`.
 */
export function IntField(opts: { min?: number; max?: number; query?: boolean } = {}): PropertyDecorator {
  const decorators: PropertyDecorator[] = [];
  if (opts.query) decorators.push(Transform(({ value }) => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value)));
  // class-validator runs a property's checks in the order they are applied: the type first.
  decorators.push(IsInt({ message: '$property must be an integer' }));
  if (opts.min !== undefined) decorators.push(Min(opts.min));
  if (opts.max !== undefined) decorators.push(Max(opts.max));
  // Merged with the field's own @ApiProperty (description, example, required).
  decorators.push(ApiProperty({ type: 'integer', minimum: opts.min, maximum: opts.max }));
  return applyDecorators(...decorators);
}

/** A seq or seq cursor: an integer from `min` to MAX_SEQ. */
export function SeqField(opts: { min: 0 | 1; query?: boolean }): PropertyDecorator {
  return IntField({ ...opts, max: MAX_SEQ });
}
