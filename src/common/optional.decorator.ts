import { ValidateIf } from 'class-validator';

/**
 * An optional field: it may be left out, but a value given, null included, is validated.
 * class-validator's IsOptional lets null through as "not given", which the documents (and so
 * clients reading them) do not allow: `"beforeSeq": null` was accepted (found by test/fuzz.e2e-spec.ts).
 */
export const Optional = (): PropertyDecorator => ValidateIf((_object: object, value: unknown) => value !== undefined);
