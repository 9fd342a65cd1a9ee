import { ValidationError, ValidationPipe } from '@nestjs/common';
import { validateSync, type ValidatorOptions } from 'class-validator';
import { AppError } from './app-error.js';

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
 * ValidationPipe with class-validator's synchronous validator: none of our DTOs has an async
 * rule, and the async one costs a cascade of promises on every inbound frame.
 */
class SyncValidationPipe extends ValidationPipe {
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
    exceptionFactory: (errors) => {
      const fields = validationDetails(errors);
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
    },
  });
}
