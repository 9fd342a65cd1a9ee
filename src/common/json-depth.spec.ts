import { jsonTooDeep, MAX_JSON_DEPTH, verifyJsonDepth } from './json-depth.js';

const bytes = (text: string) => Buffer.from(text);

/** The depth of a parsed value, the way class-transformer would walk it. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce<number>((max, c) => Math.max(max, depthOf(c)), 0);
}

/** A random JSON value with strings full of brackets, quotes and escapes. */
function randomValue(depth: number, rnd: () => number): unknown {
  const strings = ['[', ']', '{"a":[', '\\', '"', '\\"[', 'é[ü{', '\u2028', 'plain'];
  const pick = rnd();
  if (depth === 0 || pick < 0.3) {
    return pick < 0.1 ? 42 : pick < 0.2 ? null : strings[Math.floor(rnd() * strings.length)].repeat(1 + Math.floor(rnd() * 3));
  }
  const n = Math.floor(rnd() * 4);
  if (pick < 0.65) return Array.from({ length: n }, () => randomValue(depth - 1, rnd));
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}[{"`, randomValue(depth - 1, rnd)]));
}

describe('jsonTooDeep', () => {
  it(`accepts ${MAX_JSON_DEPTH} levels and refuses ${MAX_JSON_DEPTH + 1}`, () => {
    const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(jsonTooDeep(bytes(nested(MAX_JSON_DEPTH)))).toBe(false);
    expect(jsonTooDeep(bytes(nested(MAX_JSON_DEPTH + 1)))).toBe(true);
    expect(jsonTooDeep(bytes('{"a":'.repeat(MAX_JSON_DEPTH + 1) + '1' + '}'.repeat(MAX_JSON_DEPTH + 1)))).toBe(true);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonTooDeep(bytes(JSON.stringify({ text: '['.repeat(100) }, null, 0)))).toBe(false);
    expect(jsonTooDeep(bytes(JSON.stringify(['\\"' + '{'.repeat(100)])))).toBe(false);
    expect(jsonTooDeep(bytes(`["\\\\",${'['.repeat(40)}${']'.repeat(40)}]`))).toBe(true);
  });

  it('counts what JSON.parse sees, for random documents with tricky strings', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 2000; i++) {
      const text = JSON.stringify(randomValue(8, rnd), null, i % 2 ? 1 : undefined);
      const depth = depthOf(JSON.parse(text));
      for (const max of [depth - 1, depth]) {
        if (max < 0) continue;
        expect([text, max, jsonTooDeep(bytes(text), max)]).toEqual([text, max, depth > max]);
      }
    }
  });
});

describe('verifyJsonDepth (body-parser verify hook)', () => {
  it('throws a 400 of type entity.too.deep for a too-deep body, in UTF-8 or UTF-16', () => {
    const deep = '['.repeat(100) + ']'.repeat(100);
    for (const [body, encoding] of [[Buffer.from(deep), 'utf-8'], [Buffer.from(deep, 'utf16le'), 'utf-16le']] as const) {
      expect(() => verifyJsonDepth(null, null, body, encoding)).toThrow(expect.objectContaining({ status: 400, expose: true, type: 'entity.too.deep' }));
    }
    expect(() => verifyJsonDepth(null, null, Buffer.from('{"a":[1]}'), 'utf-8')).not.toThrow();
  });
});
