import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { Optional } from './optional.decorator.js';
import { codePointLength, StringField } from './string-field.decorator.js';
import { findRefusedString } from './text-hygiene.js';

class Probe {
  @StringField({ min: 1, max: 4 })
  name!: string;

  @Optional() @StringField({ max: 2 })
  note?: string;
}

const errors = (plain: object) => validateSync(plainToInstance(Probe, plain), { whitelist: true, forbidNonWhitelisted: true }).map((e) => e.property);

describe('StringField', () => {
  it('counts code points, as JSON Schema and PostgreSQL varchar do', () => {
    expect(['abcd', '😀😀', 'a\uFE0F', 'e\u0301', '', '\ud800'].map(codePointLength)).toEqual([4, 2, 2, 2, 0, 1]);
    expect(errors({ name: '😀😀😀😀' })).toEqual([]); // 4 characters, 8 UTF-16 units
    expect(errors({ name: 'a\uFE0Fa\uFE0Fa' })).toEqual(['name']); // 5 characters (validator.js counted 3)
    expect(errors({ name: '' })).toEqual(['name']);
    expect(errors({ name: 5 })).toEqual(['name']);
  });

  it('Optional: a field may be left out, but null is validated like any value', () => {
    expect(errors({ name: 'a' })).toEqual([]);
    expect(errors({ name: 'a', note: null })).toEqual(['note']);
  });
});

describe('findRefusedString', () => {
  it('refuses the keys the pipeline would drop unseen, wherever they are', () => {
    for (const key of ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', '__defineGetter__']) {
      expect(findRefusedString(JSON.parse(`{"a":{"${key}":1}}`))).toEqual({ path: `a.${key}`, problem: expect.stringContaining('not a field') });
    }
    expect(findRefusedString({ a: { name: 'x', proto: 1, constructorName: 2 } })).toBeNull();
  });
});
