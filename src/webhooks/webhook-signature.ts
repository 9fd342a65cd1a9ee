import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header a receiver checks: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = 'X-Parley-Signature';
/** The event's id, the same on every retry: the receiver's dedupe key. */
export const DELIVERY_HEADER = 'X-Parley-Delivery';
export const EVENT_HEADER = 'X-Parley-Event';

/**
 * Signs a body at a time. The time is in the signed string, so a captured request cannot be
 * replayed later than the receiver's tolerance; each attempt is signed anew with its own time.
 */
export function signWebhook(secret: string, body: string, unixSeconds = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/**
 * What a receiver does (docs/webhooks.md has the same function, standalone): true when the
 * header signs this exact body with the secret and its time is within `toleranceSeconds` of now.
 * Compared in constant time. Several `v1=` values are accepted (room for a secret rotation).
 */
export function verifyWebhook(secret: string, body: string, header: string | undefined | null, toleranceSeconds = 300, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  if (!header) return false;
  let t = NaN;
  const macs: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && /^\d+$/.test(v ?? '')) t = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '')) macs.push(v);
  }
  if (!Number.isFinite(t) || Math.abs(nowSeconds - t) > toleranceSeconds || macs.length === 0) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  return macs.some((m) => timingSafeEqual(Buffer.from(m), expected));
}
