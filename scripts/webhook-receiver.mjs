#!/usr/bin/env node
// An example webhook receiver for Parley (docs/webhooks.md), with no dependency:
//   WEBHOOK_SECRET=... PORT=4000 node scripts/webhook-receiver.mjs
// It checks X-Parley-Signature against the raw body, answers 401 to anything unsigned, stale or
// forged, drops repeats by X-Parley-Delivery (delivery is at least once), prints one JSON line
// per new event and answers 204. Copy verifyParleySignature into your own backend.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

/**
 * True when `header` (X-Parley-Signature: `t=<unix seconds>,v1=<hex>`) signs `rawBody` (the
 * bytes as received, before any JSON parsing) with `secret`, and its time is within
 * `toleranceSeconds` of now (a captured request cannot be replayed later).
 */
export function verifyParleySignature(secret, rawBody, header, toleranceSeconds = 300) {
  if (typeof header !== 'string') return false;
  let t = NaN;
  const macs = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && /^\d+$/.test(v ?? '')) t = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '')) macs.push(v);
  }
  if (!Number.isFinite(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex'));
  return macs.some((mac) => timingSafeEqual(Buffer.from(mac), expected));
}

function main() {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) {
    process.stderr.write('WEBHOOK_SECRET is required\n');
    process.exit(1);
  }
  const seen = new Set(); // use your database in production: a unique key on the delivery id
  createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (req.method !== 'POST' || !verifyParleySignature(secret, raw, req.headers['x-parley-signature'])) {
        res.writeHead(401).end();
        return;
      }
      const delivery = req.headers['x-parley-delivery'];
      if (!seen.has(delivery)) {
        seen.add(delivery);
        const event = JSON.parse(raw.toString('utf8'));
        process.stdout.write(`${JSON.stringify(event)}\n`);
      }
      res.writeHead(204).end(); // answer fast: a slow answer is a failed attempt, retried
    });
  }).listen(Number(process.env.PORT ?? 4000), '127.0.0.1', () => process.stderr.write(`listening on ${process.env.PORT ?? 4000}\n`));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
