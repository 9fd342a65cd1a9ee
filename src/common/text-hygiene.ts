/**
 * What a string from a client may hold. Control characters (NUL above all: PostgreSQL refuses it
 * in text, and a terminal obeys ESC and BEL) and lone surrogates (SQLite and PostgreSQL store
 * them differently, so they came back changed) are refused wherever they appear, before any
 * validation; newline and tab are text.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * At least one character that shows: not white space, not a control or format character
 * (zero-width space and joiners, BOM), not a lone combining mark, not a blank look-alike
 * (Hangul fillers, Braille blank).
 */
export const VISIBLE = /[^\s\p{Cc}\p{Cf}\p{Mn}\p{Me}\p{Zs}\u115F\u1160\u2800\u3164\uFFA0]/u;

/** Why this string is refused, or null. */
export function textProblem(s: string): string | null {
  if (CONTROL.test(s)) return 'must not contain control characters (other than newline and tab)';
  if (LONE_SURROGATE.test(s)) return 'must be well-formed Unicode (no lone surrogates)';
  return null;
}

/**
 * The first refused string in a parsed payload (a body, a query, a frame's data), with its path
 * (`text`, `members.3`), or null. Only plain data is walked; its depth is already bounded by the
 * parser's nesting limit.
 */
export function findRefusedString(value: unknown, path = ''): { path: string; problem: string } | null {
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { path: path || 'value', problem } : null;
  }
  if (typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findRefusedString(value[i], path ? `${path}.${i}` : String(i));
      if (found) return found;
    }
    return null;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return null; // not parsed JSON (a socket, a Date)
  for (const key of Object.keys(value)) {
    const keyProblem = textProblem(key);
    if (keyProblem) return { path: path ? `${path}.${key}` : key, problem: `key ${keyProblem}` };
    const found = findRefusedString((value as Record<string, unknown>)[key], path ? `${path}.${key}` : key);
    if (found) return found;
  }
  return null;
}
