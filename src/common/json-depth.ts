/**
 * The deepest nesting of arrays and objects accepted in client JSON (HTTP bodies and WebSocket
 * frames). Parley's payloads need 3 levels; deeper documents only cost: class-transformer and
 * class-validator recurse once per level, so 2,000 nested arrays in a 4 KB body took 60–120 ms of
 * CPU, and 45,000 overflowed the stack (a 500). See docs/security.md.
 */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * Whether a JSON text nests arrays and objects deeper than `max`, found in one pass over the raw
 * bytes (UTF-8: every byte of a multi-byte character is >= 0x80, so none looks like a bracket or
 * a quote) before anything parses it. Brackets inside strings do not count. It does not validate:
 * for any text JSON.parse accepts, the depth counted is the document's depth; other texts are
 * refused by JSON.parse next.
 */
export function jsonTooDeep(json: Uint8Array, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0, n = json.length; i < n; i++) {
    const c = json[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return false;
}

export const TOO_DEEP_MESSAGE = `JSON nested deeper than ${MAX_JSON_DEPTH} levels`;

/**
 * body-parser's `verify` hook for JSON bodies: runs on the raw bytes before JSON.parse, and
 * refuses a too-deep body with a 400 that the HTTP filter answers as `invalid_payload`.
 */
export function verifyJsonDepth(_req: unknown, _res: unknown, body: Buffer, encoding: string): void {
  let utf8 = body;
  if (encoding !== 'utf-8') {
    // body-parser lets any utf-* charset through; the rare UTF-16 body is re-encoded to scan it.
    try {
      utf8 = Buffer.from(new TextDecoder(encoding).decode(body));
    } catch {
      throw clientError(415, `unsupported charset "${encoding}"`, 'charset.unsupported');
    }
  }
  if (jsonTooDeep(utf8)) throw clientError(400, TOO_DEEP_MESSAGE, 'entity.too.deep');
}

/** An error in http-errors' shape (status, expose), without the cost of a stack trace. */
function clientError(status: number, message: string, type: string): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return Object.assign(new Error(message), { status, statusCode: status, expose: true, type });
  } finally {
    Error.stackTraceLimit = limit;
  }
}
