import { createHmac } from 'node:crypto';
import { retryDelayMs } from './webhook-delivery.service.js';
import { signWebhook, verifyWebhook } from './webhook-signature.js';

describe('webhook signatures', () => {
  const secret = 'whsec-unit-0123456789abcdef';
  const body = '{"id":"e1","type":"user.created","createdAt":"2026-11-23T00:00:00.000Z","data":{}}';

  it('signs "t.body" with HMAC-SHA256 in hex, the time in seconds', () => {
    const header = signWebhook(secret, body, 1795400000);
    expect(header).toBe(`t=1795400000,v1=${createHmac('sha256', secret).update(`1795400000.${body}`).digest('hex')}`);
  });

  it('verifies its own signature within the tolerance, and nothing else', () => {
    const now = 1795400000;
    const header = signWebhook(secret, body, now);
    expect(verifyWebhook(secret, body, header, 300, now + 299)).toBe(true);
    expect(verifyWebhook(secret, body, header, 300, now + 301)).toBe(false); // a replay, later
    expect(verifyWebhook(secret, body, header, 300, now - 301)).toBe(false);
    expect(verifyWebhook('another-secret-0123456789', body, header, 300, now)).toBe(false);
    expect(verifyWebhook(secret, body.replace('e1', 'e2'), header, 300, now)).toBe(false);
    expect(verifyWebhook(secret, body, header.replace(`t=${now}`, `t=${now + 1}`), 300, now)).toBe(false); // the time is signed
    for (const bad of [undefined, '', 't=,v1=', `v1=${'0'.repeat(64)}`, `t=${now}`, `t=${now},v1=xyz`, `t=${now},v1=${'0'.repeat(64)}`]) {
      expect(verifyWebhook(secret, body, bad, 300, now)).toBe(false);
    }
    // A second v1 (a rotated secret) is accepted when one of them matches.
    expect(verifyWebhook(secret, body, `${header},v1=${'0'.repeat(64)}`, 300, now)).toBe(true);
  });
});

describe('webhook retry backoff', () => {
  it('doubles from the minimum up to the maximum, with a random half of each wait', () => {
    const lowest = (attempt: number) => retryDelayMs(attempt, 1000, 60000, () => 0);
    const highest = (attempt: number) => retryDelayMs(attempt, 1000, 60000, () => 1);
    expect([1, 2, 3, 4, 7, 8, 30].map(highest)).toEqual([1000, 2000, 4000, 8000, 60000, 60000, 60000]);
    expect([1, 2, 3].map(lowest)).toEqual([500, 1000, 2000]);
    // Each wait is at least the longest possible previous one: the waits grow, whatever the jitter.
    for (let a = 1; a < 10; a++) expect(lowest(a + 1)).toBeGreaterThanOrEqual(Math.min(highest(a), 30000));
    expect(retryDelayMs(1e6, 1000, 60000)).toBeLessThanOrEqual(60000);
  });
});
