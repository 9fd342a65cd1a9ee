import { Param, ParseUUIDPipe } from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import { AppError } from './app-error.js';
import { UUID_PATTERN } from './uuid.js';

/**
 * A UUID path parameter: parsed (`400 invalid_payload` naming it, like any refused field) and
 * documented as `format: uuid` in one decorator. A parameter decorator cannot be a method
 * decorator, so it applies @ApiParam to its method itself.
 */
export function UuidParam(name = 'id', description?: string): ParameterDecorator {
  const parse = Param(
    name,
    new ParseUUIDPipe({
      exceptionFactory: () => new AppError('invalid_payload', `${name}: ${name} must be a UUID`, { fields: { [name]: [`${name} must be a UUID`] } }),
    }),
  );
  const doc = ApiParam({ name, description, schema: { type: 'string', format: 'uuid', pattern: UUID_PATTERN } });
  return (target, key, index) => {
    parse(target, key, index);
    doc(target, key!, Object.getOwnPropertyDescriptor(target, key!)!);
  };
}
