import { Redis } from 'ioredis';
import { REDIS_SERVER_AVAILABLE, startRedis, TestRedis } from './helpers/redis-server.js';
import { freePort } from './helpers/server-process.js';
import { startApp, TestApp } from './helpers/test-app.js';

const describeWithRedis = REDIS_SERVER_AVAILABLE ? describe : describe.skip;
if (!REDIS_SERVER_AVAILABLE) console.warn('redis-server is not installed: the shared HTTP rate limit tests are skipped');

/**
 * With REDIS_URL, two instances count against the same limits (a Redis of the test's own, never
 * the shared one). The limits do not depend on the database: SQLite only.
 */
describeWithRedis('HTTP rate limits shared through Redis', () => {
  let redis: TestRedis;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      HTTP_RATE_LIMIT: 'true',
      TRUST_PROXY: 'loopback',
      HTTP_RATE_LIMIT_LOGIN: '6/1m',
      HTTP_RATE_LIMIT_REGISTER: '4/1h',
    };
    [a, b] = await Promise.all([startApp('sqlite', env), startApp('sqlite', env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  const login = (t: TestApp, from: string, username: string) =>
    t.http().post('/auth/login').set('X-Forwarded-For', from).send({ username, password: 'password123' });

  /** Waits until an instance counts in Redis again (after a restart of Redis). */
  async function countsInRedis(t: TestApp, tag: string, url = redis.url): Promise<void> {
    const client = new Redis(url);
    try {
      for (let i = 0; ; i++) {
        await login(t, '198.51.100.1', `probe_${tag}_${i}`).expect(401);
        if ((await client.exists(`parley:rate:login:198.51.100.1|probe_${tag}_${i}`)) === 1) return;
        if (i > 100) throw new Error(`instance ${tag} does not count in Redis`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.disconnect();
    }
  }

  it('counts login guesses made on two instances against one limit', async () => {
    for (let i = 0; i < 6; i++) await login(i % 2 ? a : b, '203.0.113.9', 'victim').expect(401);
    const refused = await login(a, '203.0.113.9', 'victim').expect(429);
    expect(refused.body).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) });
    await login(b, '203.0.113.9', 'victim').expect(429);
    // The counter is a Redis key whose time to live is the window.
    const client = new Redis(redis.url);
    const ttl = await client.pttl('parley:rate:login:203.0.113.9|victim');
    client.disconnect();
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('counts registrations on two instances against one limit', async () => {
    const register = (t: TestApp, i: number) =>
      t.http().post('/auth/register').set('X-Forwarded-For', '203.0.113.10').send({ username: `shared_${i}`, password: 'password123' });
    for (let i = 0; i < 4; i++) await register(i % 2 ? a : b, i).expect(201);
    await register(a, 4).expect(429);
    await register(b, 5).expect(429);
  });

  it('keeps limiting, per instance, while Redis is down, and shares again once it is back', async () => {
    const port = redis.port;
    await redis.stop();
    // Each instance counts on its own: six guesses on `a` reach a's limit, not b's.
    for (let i = 0; i < 6; i++) await login(a, '203.0.113.11', 'victim2').expect(401);
    await login(a, '203.0.113.11', 'victim2').expect(429);
    await login(b, '203.0.113.11', 'victim2').expect(401);

    redis = await startRedis(port);
    await countsInRedis(a, 'a');
    await countsInRedis(b, 'b');
    for (let i = 0; i < 6; i++) await login(i % 2 ? a : b, '203.0.113.12', 'victim3').expect(401);
    await login(b, '203.0.113.12', 'victim3').expect(429);
  });

  it('starts while Redis is down, and shares once it is up', async () => {
    const port = await freePort();
    const c = await startApp('sqlite', { REDIS_URL: `redis://127.0.0.1:${port}`, HTTP_RATE_LIMIT: 'true', TRUST_PROXY: 'loopback' });
    let late: TestRedis | undefined;
    try {
      await login(c, '203.0.113.13', 'victim4').expect(401);
      late = await startRedis(port);
      await countsInRedis(c, 'c', late.url);
    } finally {
      await c.close();
      await late?.stop();
    }
  });
});
