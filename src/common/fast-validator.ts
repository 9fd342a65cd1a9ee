import { createRequire } from 'node:module';
import type { MetadataStorage as TransformerMetadata } from 'class-transformer/types/MetadataStorage.js';
import {
  getMetadataStorage, isInt, isObject, isString, isUUID, length, matches, max, maxLength, min, minLength, ValidationTypes,
} from 'class-validator';
import { TransformationType } from 'class-transformer';
import { codePointLength, STRING_LENGTH } from './string-field.decorator.js';

/** class-transformer's metadata (what its decorators wrote): the package exports no path to it. */
const { defaultMetadataStorage } = createRequire(import.meta.url)('class-transformer/cjs/storage.js') as { defaultMetadataStorage: TransformerMetadata };

/**
 * A DTO's decorators compiled once into a plain function: `(plain) => dto | undefined`. It
 * returns the DTO that ValidationPipe (whitelist, forbidNonWhitelisted, transform) would return,
 * or undefined when the payload fails or when it is unsure; the pipe then decides and words the
 * error. The decorators stay the only statement of the rules: nothing here names a field.
 *
 * What it understands: conditional validation (@ValidateIf, our @Optional, @IsOptional) and the
 * constraints in CHECKS, each checked with class-validator's own function for it. A class with
 * anything else (another constraint, `each`, nested validation, a per-constraint validateIf,
 * class-transformer metadata) compiles to a function that always returns undefined.
 *
 * The payload is parsed JSON, as class-transformer copies it for a class without @Type: a plain
 * object whose values are copied as they are (primitives) or as plain copies (objects, arrays).
 * Text hygiene (findRefusedString) is not repeated here: callers run it first, as the pipe does.
 */
export type FastValidator<T> = (plain: unknown) => T | undefined;

type Check = (value: unknown) => boolean;
type ValidationMetadata = ReturnType<ReturnType<typeof getMetadataStorage>['getTargetValidationMetadatas']>[number];

/** class-validator's constraint name → its check, from the constraints the decorator stored. */
const CHECKS: Record<string, (c: unknown[]) => Check | undefined> = {
  isString: () => isString,
  isUuid: ([version]) => (v) => isUUID(v, version as Parameters<typeof isUUID>[1]),
  matches: ([pattern, modifiers]) => {
    // A global or sticky RegExp keeps state between calls: leave it to the decorators.
    if (pattern instanceof RegExp && (pattern.global || pattern.sticky)) return undefined;
    return (v) => matches(v as string, pattern as string, modifiers as string);
  },
  isLength: ([lo, hi]) => (v) => length(v, lo as number, hi as number),
  maxLength: ([hi]) => (v) => maxLength(v, hi as number),
  minLength: ([lo]) => (v) => minLength(v, lo as number),
  isInt: () => isInt,
  min: ([lo]) => (v) => min(v, lo as number),
  max: ([hi]) => (v) => max(v, hi as number),
  isObject: () => isObject,
  // StringField's own constraint: code points from min to max.
  [STRING_LENGTH]: ([lo, hi]) => (v) => typeof v === 'string' && codePointLength(v) >= (lo as number) && codePointLength(v) <= (hi as number),
};

interface CompiledProperty {
  name: string;
  conditions: ((object: object, value: unknown) => boolean)[];
  checks: Check[];
}

/** Why a class does not compile, or null; exported for the test that lists the frame DTOs. */
export function compileProblem(dto: Function): string | null {
  return compile(dto).problem;
}

const compiled = new Map<Function, FastValidator<object>>();

/** The compiled validator of a DTO class (compiled on first use, then cached). */
export function fastValidator<T extends object>(dto: new () => T): FastValidator<T> {
  let fn = compiled.get(dto);
  if (!fn) {
    const { validate } = compile(dto);
    fn = validate;
    compiled.set(dto, fn);
  }
  return fn as FastValidator<T>;
}

const never: FastValidator<never> = () => undefined;

function compile(dto: Function): { validate: FastValidator<object>; problem: string | null } {
  const refuse = (problem: string) => ({ validate: never, problem });
  // The same metadata class-validator's executor reads for validateSync(object, options) with
  // no groups: one walk, here, instead of one per payload.
  const metadatas = getMetadataStorage().getTargetValidationMetadatas(dto, undefined as unknown as string, false, false, undefined);
  if (metadatas.length === 0) return refuse('no validation metadata (forbidUnknownValues refuses every payload)');
  const byName = new Map<string, ValidationMetadata[]>();
  for (const m of metadatas) byName.set(m.propertyName, [...(byName.get(m.propertyName) ?? []), m]);

  const properties: CompiledProperty[] = [];
  for (const [name, list] of byName) {
    const property: CompiledProperty = { name, conditions: [], checks: [] };
    for (const m of list) {
      if (m.type === ValidationTypes.CONDITIONAL_VALIDATION) {
        property.conditions.push(m.constraints[0] as CompiledProperty['conditions'][number]);
        continue;
      }
      if (m.type !== ValidationTypes.CUSTOM_VALIDATION) return refuse(`${name}: validation type ${m.type}`);
      if (m.each || m.validateIf) return refuse(`${name}: ${m.name} with each or validateIf`);
      const constraints = getMetadataStorage().getTargetValidatorConstraints(m.constraintCls);
      if (constraints.length !== 1 || constraints[0].async) return refuse(`${name}: ${m.name} is async or has several constraints`);
      const check = m.name !== undefined && Object.hasOwn(CHECKS, m.name) ? CHECKS[m.name](m.constraints ?? []) : undefined;
      if (!check) return refuse(`${name}: unknown constraint ${m.name}`);
      property.checks.push(check);
    }
    // class-transformer decides the value of a property with @Type, @Transform, @Expose or @Exclude.
    if (
      defaultMetadataStorage.findTypeMetadata(dto, name) ||
      defaultMetadataStorage.findTransformMetadatas(dto, name, TransformationType.PLAIN_TO_CLASS).length > 0 ||
      defaultMetadataStorage.findExposeMetadata(dto, name) ||
      defaultMetadataStorage.findExcludeMetadata(dto, name)
    ) {
      return refuse(`${name}: class-transformer metadata`);
    }
    properties.push(property);
  }
  if (defaultMetadataStorage.getExposedMetadatas(dto).length > 0 || defaultMetadataStorage.getExcludedMetadatas(dto).length > 0) {
    return refuse('class-transformer @Expose/@Exclude');
  }

  const allowed = new Set(byName.keys());
  const Dto = dto as new () => Record<string, unknown>;
  const validate = (plain: unknown): object | undefined => {
    if (!isPlainObject(plain)) return undefined;
    const instance = new Dto();
    for (const key in plain) {
      // Keys without rules: forbidNonWhitelisted refuses them (the decorators' path words it).
      if (!allowed.has(key)) return undefined;
      const value = plain[key];
      instance[key] = typeof value === 'object' && value !== null ? copyJson(value) : value;
    }
    // The whitelist also sees the class's own defaults (`limit = 50`).
    for (const key of Object.keys(instance)) if (!allowed.has(key)) return undefined;
    for (const p of properties) {
      const value = instance[p.name];
      let applies = true;
      for (const condition of p.conditions) if (!condition(instance, value)) applies = false;
      if (!applies) continue;
      for (const check of p.checks) if (!check(value)) return undefined;
    }
    return instance;
  };
  return { validate, problem: null };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype;
}

/** What class-transformer makes of a nested JSON value of a property without @Type: a copy. */
function copyJson(v: object): unknown {
  if (Array.isArray(v)) return v.map((x: unknown) => (typeof x === 'object' && x !== null ? copyJson(x) : x));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[key];
    out[key] = typeof x === 'object' && x !== null ? copyJson(x) : x;
  }
  return out;
}
