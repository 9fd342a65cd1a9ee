import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { validateSync, type ValidatorOptions } from 'class-validator';
import { AppError } from './app-error.js';
import { fastValidator } from './fast-validator.js';
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

/** DTOs whose compiled validator (fast-validator.ts) the pipe tries before the decorators' path. */
const compiledDtos = new Set<Function>();

export function useCompiledValidator(...dtos: (new () => object)[]): void {
  for (const dto of dtos) compiledDtos.add(dto);
}

/**
 * What the pipe returns for a payload its fast path accepts: the DTO when the payload is free of
 * refused strings and the compiled validator accepts it, else undefined (the decorators decide).
 */
export function fastTransform<T extends object>(dto: new () => T, value: unknown): T | undefined {
  return findRefusedString(value) ? undefined : fastValidator(dto)(value);
}

/**
 * ValidationPipe with class-validator's synchronous validator (none of our DTOs has an async
 * rule, and the async one costs a cascade of promises on every inbound frame), and the compiled
 * validators of the DTOs that use one (`fast: false`: the decorators' path only, for the tests
 * that hold the compiled validators to it).
 */
class SyncValidationPipe extends ValidationPipe {
  constructor(
    options: ConstructorParameters<typeof ValidationPipe>[0],
    private readonly fast: boolean,
  ) {
    super(options);
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const refused = findRefusedString(value);
    if (refused) throw invalidPayload({ [refused.path]: [`${refused.path} ${refused.problem}`] });
    const dto = metadata.metatype;
    const fast = this.fast && dto && compiledDtos.has(dto) ? fastValidator(dto as new () => object)(value) : undefined;
    return fast ?? super.transform(value, metadata);
  }

  protected override validate(object: object, validatorOptions?: ValidatorOptions): ValidationError[] {
    return validateSync(object, validatorOptions);
  }
}

/** The one ValidationPipe of the project: whitelist, transform, and AppError on failure. */
export function createValidationPipe({ fast = true }: { fast?: boolean } = {}): ValidationPipe {
  return new SyncValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    // Cheaper and clearer: one message per field is plenty for a client to act on.
    stopAtFirstError: true,
    exceptionFactory: (errors) => invalidPayload(validationDetails(errors)),
  }, fast);
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
