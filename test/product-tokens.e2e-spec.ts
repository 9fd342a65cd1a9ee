import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';
import { DATABASES, startApp, TestApp } from './helpers/test-app.js';
import { HandshakeRefused, TestClient } from './helpers/ws-client.js';

/**
 * Product-issued tokens: a JWKS served on a local port (keys rotated during the test), and every
 * kind of token a product or an attacker could show: good ones (RS256, ES256), forged, expired,
 * of another issuer or audience, `alg: none`, and HS256 signed with the product's public key.
 */

const ISSUER = 'https://auth.product.example/';
const AUDIENCE = 'parley';
const KEY = 'test-api-key-0123456789abcdef';
const api = { Authorization: `ApiKey ${KEY}` };

interface Signer {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signer(kid: string, alg: 'RS256' | 'ES256'): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A JWKS endpoint whose keys the test changes; counts its requests. */
class JwksServer {
  keys: JWK[] = [];
  requests = 0;
  /** When set, every request answers 503: the product's key server is down. */
  down = false;
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((_req, res) => {
      this.requests++;
      if (this.down) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let n = 0;
const sub = () => `auth0|${Date.now().toString(36)}${++n}`;

function sign(s: Signer, claims: Record<string, unknown>, opts: { iss?: string; aud?: string; exp?: number | null; kid?: string } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: s.alg, kid: opts.kid ?? s.kid }).setIssuedAt().setIssuer(opts.iss ?? ISSUER).setAudience(opts.aud ?? AUDIENCE);
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? '10m');
  return jwt.sign(s.privateKey);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

describe.each(DATABASES)('product-issued tokens (JWKS) on %s', (db) => {
  let t: TestApp;
  const jwks = new JwksServer();
  let rsa: Signer;
  let ec: Signer;

  beforeAll(async () => {
    [rsa, ec] = await Promise.all([signer('rsa-1', 'RS256'), signer('ec-1', 'ES256')]);
    jwks.keys = [rsa.jwk, ec.jwk];
    await jwks.start();
    t = await startApp(db, { AUTH_JWKS_URL: jwks.url, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE, PARLEY_API_KEYS: KEY });
  });
  afterAll(async () => {
    await t?.close();
    await jwks.stop();
  });

  it('accepts an RS256 token: the user is made on first use from preferred_username, and found again by sub', async () => {
    const id = sub();
    const token = await sign(rsa, { sub: id, preferred_username: 'Zoë Product' });
    const me = (await t.http().get('/users/me').set(bearer(token)).expect(200)).body;
    expect(me).toMatchObject({ username: 'Zoe_Product', externalId: id });
    const again = await sign(rsa, { sub: id, preferred_username: 'Someone Else' });
    expect((await t.http().get('/users/me').set(bearer(again)).expect(200)).body.id).toBe(me.id);
    // The server API knows them by the same id.
    expect((await t.http().put(`/admin/users/${encodeURIComponent(id)}`).set(api).send({ username: 'zoe_product', displayName: 'Zoë' }).expect(200)).body.id).toBe(me.id);
  });

  it('accepts an ES256 token; takes `name` when there is no preferred_username and makes the name unique and valid', async () => {
    const first = (await t.http().get('/users/me').set(bearer(await sign(ec, { sub: sub(), name: 'J' }))).expect(200)).body;
    expect(first.username).toMatch(/^[A-Za-z0-9_.-]{3,32}$/);
    const a = (await t.http().get('/users/me').set(bearer(await sign(ec, { sub: sub(), name: 'Same Name' }))).expect(200)).body;
    const b = (await t.http().get('/users/me').set(bearer(await sign(ec, { sub: sub(), name: 'Same Name' }))).expect(200)).body;
    expect(a.username).toBe('Same_Name');
    expect(b.username).toMatch(/^Same_Name-[0-9a-f]{4}$/);
    const none = (await t.http().get('/users/me').set(bearer(await sign(ec, { sub: sub() }))).expect(200)).body;
    expect(none.username).toMatch(/^user/);
  });

  it('accepts product tokens at the WebSocket handshake (header and ?token=) and for tickets; logout ends that token', async () => {
    const token = await sign(rsa, { sub: sub(), preferred_username: 'wsuser' });
    const { client, ready } = await TestClient.connect(t.wsUrl, token);
    expect(ready.user.username).toMatch(/^wsuser/);
    const { client: viaQuery } = await TestClient.connect(t.wsUrl, token, { query: true });
    const { ticket } = (await t.http().post('/auth/ws-ticket').set(bearer(token)).expect(201)).body;
    const viaTicket = await TestClient.open(`${t.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null);
    await viaTicket.next('session.ready');
    await t.http().post('/auth/logout').set(bearer(token)).expect(204);
    for (const c of [client, viaQuery, viaTicket]) expect(await c.waitClosed()).toEqual({ code: 1008, reason: 'session ended' });
    await t.http().get('/users/me').set(bearer(token)).expect(401);
    await expect(TestClient.open(t.wsUrl, token)).rejects.toEqual(new HandshakeRefused(401));
  });

  it('refuses forged, expired, wrong-issuer, wrong-audience, exp-less and sub-less tokens with 401, on HTTP and at the handshake', async () => {
    const forger = await signer('rsa-1', 'RS256'); // the real kid, another key
    const id = sub();
    const bad = {
      forged: await sign(forger, { sub: id }),
      expired: await sign(rsa, { sub: id }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      wrongIssuer: await sign(rsa, { sub: id }, { iss: 'https://evil.example/' }),
      wrongAudience: await sign(rsa, { sub: id }, { aud: 'someone-else' }),
      noExp: await sign(rsa, { sub: id }, { exp: null }),
      noSub: await sign(rsa, {}),
      badSub: await sign(rsa, { sub: 'has spaces in it' }),
      unknownKid: await sign(forger, { sub: id }, { kid: 'nobody-knows' }),
    };
    for (const [name, token] of Object.entries(bad)) {
      const res = await t.http().get('/users/me').set(bearer(token));
      expect([name, res.status, res.body.code]).toEqual([name, 401, 'unauthorized']);
      await expect(TestClient.open(t.wsUrl, token)).rejects.toEqual(new HandshakeRefused(401));
    }
    expect((await t.http().get('/users/me').set(bearer(bad.expired))).body.message).toMatch(/expired/);
  });

  it('refuses algorithm confusion: HS256 signed with the public key, and alg none', async () => {
    const pem = await exportSPKI((await generateKeyPair('RS256', { extractable: true })).publicKey); // any public key: none may sign HS256
    const header = { alg: 'HS256', kid: rsa.kid, typ: 'JWT' };
    const payload = { sub: sub(), iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 };
    const body = `${b64(header)}.${b64(payload)}`;
    const rsaPem = JSON.stringify(rsa.jwk); // the JWK text a confused verifier might use as an HMAC secret
    for (const secret of [pem, rsaPem]) {
      const hs = `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
      await t.http().get('/users/me').set(bearer(hs)).expect(401);
      await expect(TestClient.open(t.wsUrl, hs)).rejects.toEqual(new HandshakeRefused(401));
    }
    for (const alg of ['none', 'None', 'RS384', 'PS256']) {
      const unsigned = `${b64({ alg, kid: rsa.kid })}.${b64(payload)}.`;
      await t.http().get('/users/me').set(bearer(unsigned)).expect(401);
      await expect(TestClient.open(t.wsUrl, unsigned)).rejects.toEqual(new HandshakeRefused(401));
    }
  });

  it("keeps Parley's own HS256 tokens working beside product tokens", async () => {
    const res = await t.http().post('/auth/register').send({ username: `own${++n}_${Date.now() % 100000}`, password: 'password123' }).expect(201);
    await t.http().get('/users/me').set(bearer(res.body.accessToken)).expect(200);
    const { client } = await TestClient.connect(t.wsUrl, res.body.accessToken);
    await client.close();
  });

  it('caches the keys, and fetches them again on an unknown kid after a rotation (at most once per cooldown)', async () => {
    const id = sub();
    await t.http().get('/users/me').set(bearer(await sign(rsa, { sub: id }))).expect(200);
    const before = jwks.requests;
    for (let i = 0; i < 3; i++) await t.http().get('/users/me').set(bearer(await sign(rsa, { sub: id, i }))).expect(200);
    expect(jwks.requests).toBe(before); // known kid: no fetch

    const next = await signer('rsa-2', 'RS256');
    jwks.keys = [next.jwk, ec.jwk]; // rotated: rsa-1 retired
    await new Promise((r) => setTimeout(r, 5500)); // past the refetch cooldown
    await t.http().get('/users/me').set(bearer(await sign(next, { sub: id }))).expect(200);
    expect(jwks.requests).toBe(before + 1);
    // A flood of unknown kids right after costs no more fetches (cooldown).
    const stranger = await signer('rsa-x', 'RS256');
    for (let i = 0; i < 3; i++) await t.http().get('/users/me').set(bearer(await sign(stranger, { sub: id, i }))).expect(401);
    expect(jwks.requests).toBeLessThanOrEqual(before + 2);
  }, 30_000);

  it('keeps accepting tokens of known keys while the key server is down; unknown keys are refused then', async () => {
    const id = sub();
    await t.http().get('/users/me').set(bearer(await sign(ec, { sub: id }))).expect(200);
    jwks.down = true;
    try {
      await new Promise((r) => setTimeout(r, 5500)); // past the cooldown: an unknown kid does try the server
      await t.http().get('/users/me').set(bearer(await sign(ec, { sub: id, again: 1 }))).expect(200);
      const stranger = await signer('ec-x', 'ES256');
      await t.http().get('/users/me').set(bearer(await sign(stranger, { sub: id }))).expect(401);
      await t.http().get('/users/me').set(bearer(await sign(ec, { sub: id, again: 2 }))).expect(200);
    } finally {
      jwks.down = false;
    }
  }, 30_000);

  it("refuses a deactivated user's product tokens, old and new, on HTTP and at the handshake", async () => {
    const id = sub();
    const old = await sign(ec, { sub: id, preferred_username: 'leaver' });
    await t.http().get('/users/me').set(bearer(old)).expect(200);
    const { client } = await TestClient.connect(t.wsUrl, old);
    await t.http().post(`/admin/users/${encodeURIComponent(id)}/deactivate`).set(api).expect(200);
    expect(await client.waitClosed()).toEqual({ code: 1008, reason: 'session ended' });
    await t.http().get('/users/me').set(bearer(old)).expect(401);
    const fresh = await sign(ec, { sub: id, preferred_username: 'leaver', fresh: true });
    expect((await t.http().get('/users/me').set(bearer(fresh)).expect(401)).body.message).toMatch(/deactivated/);
    await expect(TestClient.open(t.wsUrl, fresh)).rejects.toEqual(new HandshakeRefused(401));
  });
});

describe.each(DATABASES)('product-issued tokens (AUTH_PUBLIC_KEY) on %s', (db) => {
  it('verifies against one PEM key, and refuses tokens of another key', async () => {
    const s = await signer('k', 'ES256');
    const other = await signer('k', 'ES256');
    const { publicKey } = { publicKey: await (await import('jose')).importJWK(s.jwk, 'ES256') };
    const pem = await exportSPKI(publicKey as CryptoKey);
    const t = await startApp(db, { AUTH_PUBLIC_KEY: pem.replace(/\n/g, '\\n'), AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE });
    try {
      await t.http().get('/users/me').set(bearer(await sign(s, { sub: sub(), name: 'pem user' }))).expect(200);
      await t.http().get('/users/me').set(bearer(await sign(other, { sub: sub() }))).expect(401);
    } finally {
      await t.close();
    }
  });
});
