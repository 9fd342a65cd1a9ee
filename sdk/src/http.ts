import type { ErrorCode, UserRef } from './protocol.js';

/** The fetch this package needs (the global one, or one passed in). */
export type FetchLike = (input: string, init?: { method?: string; headers?: Record<string, string>; body?: string }) => Promise<{
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

/**
 * An error from the server (its stable `code`: `forbidden`, `not_found`, `rate_limited`, …) or
 * from the client itself: `closed` (the client was closed before an answer came), `network` (the
 * server could not be reached), `timeout`.
 */
export class ParleyError extends Error {
  constructor(
    readonly code: ErrorCode | 'closed' | 'network' | 'timeout',
    message: string,
    readonly details?: Record<string, unknown>,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ParleyError';
  }
}

/** Login or sign-up answer. */
export interface AuthResult {
  user: UserRef;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export function resolveFetch(given?: FetchLike): FetchLike {
  const f = given ?? (globalThis as { fetch?: FetchLike }).fetch;
  if (!f) throw new Error('@parley/client: no fetch: pass `fetch` in the options');
  // A bare global fetch must be called with globalThis as `this` in browsers.
  return given ? f : (input, init) => f.call(globalThis, input, init);
}

/** One JSON request; a non-2xx answer throws ParleyError with the server's code. */
export async function httpJson<T>(fetch: FetchLike, base: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  let res;
  try {
    res = await fetch(base.replace(/\/+$/, '') + path, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ParleyError('network', `cannot reach ${base}: ${(err as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  if (!res.ok) {
    const e = (parsed ?? {}) as { code?: ErrorCode; message?: string | string[]; details?: Record<string, unknown>; retryAfterMs?: number };
    const retryAfter = Number(res.headers.get('retry-after'));
    throw new ParleyError(
      e.code ?? (res.status >= 500 ? 'unavailable' : 'invalid_payload'),
      Array.isArray(e.message) ? e.message.join('; ') : (e.message ?? `HTTP ${res.status}`),
      e.details,
      res.status,
      e.retryAfterMs ?? (Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined),
    );
  }
  return parsed as T;
}

/** Seconds since the epoch at which a JWT expires (its `exp`), or undefined when unreadable. */
export function tokenExpiry(token: string): number | undefined {
  try {
    const part = token.split('.')[1];
    if (!part) return undefined;
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const exp = (JSON.parse(atob(b64)) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** Signs up (`POST /auth/register`). */
export function register(url: string, credentials: { username: string; password: string }, options: { fetch?: FetchLike } = {}): Promise<AuthResult> {
  return httpJson<AuthResult>(resolveFetch(options.fetch), url, 'POST', '/auth/register', credentials);
}

/** Logs in (`POST /auth/login`). */
export function login(url: string, credentials: { username: string; password: string }, options: { fetch?: FetchLike } = {}): Promise<AuthResult> {
  return httpJson<AuthResult>(resolveFetch(options.fetch), url, 'POST', '/auth/login', credentials);
}

/**
 * A `getToken` that keeps an access token fresh with its refresh token (`POST /auth/refresh`,
 * rotated on each use). `onRefresh` sees each new pair (to store it); a refresh token the server
 * refuses makes `getToken` throw `unauthorized` (log in again).
 */
export function refreshingToken(
  url: string,
  tokens: { accessToken: string; refreshToken: string },
  options: { fetch?: FetchLike; onRefresh?: (tokens: AuthResult) => void; marginSeconds?: number } = {},
): (ctx?: { force?: boolean }) => Promise<string> {
  const fetch = resolveFetch(options.fetch);
  let current = { ...tokens };
  let refreshing: Promise<string> | null = null;
  return (ctx = {}) => {
    const exp = tokenExpiry(current.accessToken);
    const fresh = exp === undefined || exp - (options.marginSeconds ?? 10) > Date.now() / 1000;
    if (!ctx.force && fresh) return Promise.resolve(current.accessToken);
    // One refresh at a time: a refresh token works once.
    refreshing ??= httpJson<AuthResult>(fetch, url, 'POST', '/auth/refresh', { refreshToken: current.refreshToken })
      .then((result) => {
        current = { accessToken: result.accessToken, refreshToken: result.refreshToken };
        options.onRefresh?.(result);
        return result.accessToken;
      })
      .finally(() => (refreshing = null));
    return refreshing;
  };
}
