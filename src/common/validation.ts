import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { validateSync, type ValidatorOptions } from 'class-validator';
import { AppError } from './app-error.js';
import { findRefusedString } from './text-hygiene.js';

/**
 * Flattens class-validator errors to `{ field: [messages] }` (nested fields dotted), the
 * `details` of every `invalid_payload` error on both transports.
 */
export function validationDetails(errors: ValidationError[], prefix = ''): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of errors) {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints) out[path] = Object.values(e.constraints);
    if (e.children?.length) Object.assign(out, validationDetails(e.children, path));
  }
  return out;
}

/**
 * A hand-written check for a DTO on a hot path. It returns the DTO when the payload is plainly
 * valid, and undefined whenever it is unsure: then the decorators decide, and word the errors.
 * It must be at least as strict as the decorators (a property test holds each one to that).
 */
export type FastParser<T> = (value: unknown) => T | undefined;
const fastParsers = new Map<Function, FastParser<object>>();

export function registerFastParser<T extends object>(dto: new () => T, parse: FastParser<T>): void {
  fastParsers.set(dto, parse);
}

/**
 * ValidationPipe with class-validator's synchronous validator (none of our DTOs has an async
 * rule, and the async one costs a cascade of promises on every inbound frame), and the fast
 * parsers of the DTOs that have one.
 */
class SyncValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const refused = findRefusedString(value);
    if (refused) throw invalidPayload({ [refused.path]: [`${refused.path} ${refused.problem}`] });
    const fast = metadata.metatype && fastParsers.get(metadata.metatype)?.(value);
    return fast ?? super.transform(value, metadata);
  }

  protected override validate(object: object, validatorOptions?: ValidatorOptions): ValidationError[] {
    return validateSync(object, validatorOptions);
  }
}

/** The one ValidationPipe of the project: whitelist, transform, and AppError on failure. */
export function createValidationPipe(): ValidationPipe {
  return new SyncValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    // Cheaper and clearer: one message per field is plenty for a client to act on.
    stopAtFirstError: true,
    exceptionFactory: (errors) => invalidPayload(validationDetails(errors)),
  });
}

/** The `invalid_payload` error of a refused payload, naming its first bad field. */
function invalidPayload(fields: Record<string, string[]>): AppError {
  const first = Object.entries(fields)[0];
  const message = first ? `${first[0]}: ${first[1][0]}` : 'invalid payload';
  // A refused payload is the client's mistake, not ours: no stack trace to capture (it was a
  // measurable part of answering a bad frame).
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new AppError('invalid_payload', message, { fields });
  } finally {
    Error.stackTraceLimit = limit;
  }
}
