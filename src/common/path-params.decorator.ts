import { Param, type PipeTransform } from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import { AppError } from './app-error.js';
import { MAX_SEQ } from './int-field.decorator.js';

const refuse = (name: string, why: string) => new AppError('invalid_payload', `${name}: ${name} ${why}`, { fields: { [name]: [`${name} ${why}`] } });

/** Applies a parameter decorator and documents the parameter (see UuidParam for why both). */
function documented(parse: ParameterDecorator, doc: MethodDecorator): ParameterDecorator {
  return (target, key, index) => {
    parse(target, key, index);
    doc(target, key!, Object.getOwnPropertyDescriptor(target, key!)!);
  };
}

/** A seq in the path: digits only, 1 to MAX_SEQ, else `400 invalid_payload` naming it. */
export function SeqParam(name = 'seq'): ParameterDecorator {
  const pipe: PipeTransform<string, number> = {
    transform: (value) => {
      if (!/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > MAX_SEQ) throw refuse(name, `must be an integer from 1 to ${MAX_SEQ}`);
      return Number(value);
    },
  };
  return documented(Param(name, pipe), ApiParam({ name, schema: { type: 'integer', minimum: 1, maximum: MAX_SEQ } }));
}

/** A string in the path that must match `pattern` (the same pattern is documented). */
export function PatternParam(name: string, pattern: RegExp, maxLength: number, why: string, description?: string): ParameterDecorator {
  const pipe: PipeTransform<string, string> = {
    transform: (value) => {
      if (typeof value !== 'string' || [...value].length > maxLength || !pattern.test(value)) throw refuse(name, why);
      return value;
    },
  };
  // The pattern itself is not documented: Unicode property escapes are no OpenAPI 3.0 regex.
  return documented(Param(name, pipe), ApiParam({ name, description, schema: { type: 'string', minLength: 1, maxLength } }));
}
