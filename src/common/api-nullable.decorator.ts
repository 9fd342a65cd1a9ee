import type { Type } from '@nestjs/common';
import { ApiExtraModels, ApiProperty, getSchemaPath } from '@nestjs/swagger';

/**
 * A property that is an object of `type` or null, in a form every OpenAPI 3.0 validator reads the
 * same way: `oneOf: [{$ref}, {type: object, nullable: true, enum: [null]}]`. What @nestjs/swagger
 * writes for `nullable: true` on a class, `{nullable: true, allOf: [{$ref}]}`, refuses null in
 * strict validators (OpenAPI 3.0.3: `nullable` only widens a `type` beside it, and the
 * referenced schema is an object).
 */
export function ApiNullableRef(type: Type, options: { description?: string } = {}): PropertyDecorator {
  return (target, key) => {
    ApiExtraModels(type)(target.constructor); // registers `type`'s schema, which the $ref names
    ApiProperty({
      ...options,
      oneOf: [{ $ref: getSchemaPath(type) }, { type: 'object', nullable: true, enum: [null] }],
    })(target, key);
  };
}
