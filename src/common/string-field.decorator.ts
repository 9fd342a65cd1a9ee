import { applyDecorators } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches, ValidateBy } from 'class-validator';

/**
 * Characters as JSON Schema's minLength/maxLength and PostgreSQL's varchar(n) count them: code
 * points (a surrogate pair is one), without allocating. class-validator's MaxLength counts
 * otherwise (validator.js leaves out U+FE0E/U+FE0F after a character), so 64 "a\uFE0F" passed
 * MaxLength(64) and then broke varchar(64) on PostgreSQL: a 500 found by test/fuzz.e2e-spec.ts.
 */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** The name of StringField's length constraint (the fast validator knows it by this name). */
export const STRING_LENGTH = 'stringLength';

/**
 * A string field of `min` to `max` characters (code points), optionally matching `pattern`, for
 * validation and for OpenAPI (`minLength`, `maxLength`, `pattern`) in one decorator. `each`: every
 * item of an array (the array's own documentation stays with its @ApiProperty).
 */
export function StringField(opts: { min?: number; max?: number; each?: boolean; pattern?: RegExp; patternMessage?: string } = {}): PropertyDecorator {
  const { min = 0, max = Infinity, each = false, pattern, patternMessage } = opts;
  const bounds =
    max === Infinity ? `at least ${min} characters` : min === 0 ? `at most ${max} characters` : min === max ? `${min} characters` : `${min} to ${max} characters`;
  const decorators: PropertyDecorator[] = [
    IsString({ each }),
    ValidateBy(
      {
        name: STRING_LENGTH,
        constraints: [min, max],
        validator: {
          validate: (value: unknown) => typeof value === 'string' && codePointLength(value) >= min && codePointLength(value) <= max,
          defaultMessage: () => `$property must be ${bounds}`,
        },
      },
      { each },
    ),
  ];
  if (pattern) decorators.push(Matches(pattern, { each, message: patternMessage }));
  if (!each) {
    decorators.push(ApiProperty({ type: 'string', minLength: min || undefined, maxLength: max === Infinity ? undefined : max, pattern: pattern?.source }));
  }
  return applyDecorators(...decorators);
}
