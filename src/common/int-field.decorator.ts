import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';

/**
 * An integer field. The type is checked first, so `"seq": "5"` is told it is not an integer
 * (not that it "must not be less than 0"). Query strings arrive as text: `query` reads plain
 * decimal digits only, so `limit=0x10` or `limit=1e2` is refused instead of becoming 16 or 100.
 */
export function IntField(opts: { min?: number; max?: number; query?: boolean } = {}): PropertyDecorator {
  const decorators: PropertyDecorator[] = [];
  if (opts.query) decorators.push(Transform(({ value }) => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value)));
  // class-validator runs a property's checks in the order they are applied: the type first.
  decorators.push(IsInt({ message: '$property must be an integer' }));
  if (opts.min !== undefined) decorators.push(Min(opts.min));
  if (opts.max !== undefined) decorators.push(Max(opts.max));
  return applyDecorators(...decorators);
}
