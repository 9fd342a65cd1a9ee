import type { Response } from 'supertest';
import { createChannel, DATABASES, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/** Limits low enough to reach in a test; TRUST_PROXY lets X-Forwarded-For play several clients. */
const LIMITS = {
  HTTP_RATE_LIMIT: 'true',
  TRUST_PROXY: 'loopback',
  HTTP_RATE_LIMIT_LOGIN: '5/1m',
  HTTP_RATE_LIMIT_LOGIN_IP: '12/1m',
  HTTP_RATE_LIMIT_LOGIN_USER: '20/1h',
  HTTP_RATE_LIMIT_REGISTER: '50/1h',
  HTTP_RATE_LIMIT_WRITE: '10/1m',
  HTTP_RATE_LIMIT_READ: '20/1m',
};

function expectRateLimited(res: Response, windowSeconds: number): void {
  expect(res.status).toBe(429);
  expect(res.body).toEqual({ statusCode: 429, code: 'rate_limited', message: expect.stringMatching(/retry in \d+ s$/), retryAfterMs: expect.any(Number) });
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(retryAfter).toBe(Math.ceil(res.body.retryAfterMs / 1000));
}

/**
 * The audit's floods: password guesses against one account, registrations, HTTP sends, channel
 * creation. Every limit answers 429 `rate_limited` with Retry-After, per the right key.
 */
describe.each(DATABASES)('HTTP rate limits on %s', (db) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  beforeAll(async () => {
    t = await startApp(db, LIMITS);
    [alice, bob, carol] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob'), registerUser(t, 'carol')]);
  });
  afterAll(() => t.close());

  const login = (from: string, username: string, password: string) =>
    t.http().post('/auth/login').set('X-Forwarded-For', from).send({ username, password });

  it('stops password guesses against one account from one address, with Retry-After', async () => {
    const from = '203.0.113.1';
    for (let i = 0; i < 5; i++) await login(from, i % 2 ? alice.username.toUpperCase() : alice.username, `wrong-pw-${i}`).expect(401);
    expectRateLimited(await login(from, alice.username, 'wrong-pw-5'), 60);
    // The right password does not get through either: the guesser learns nothing more.
    expectRateLimited(await login(from, alice.username, 'password123'), 60);
    // Others are not locked out: Bob from the same address, Alice from her own.
    await login(from, bob.username, 'password123').expect(200);
    await login('198.51.100.7', alice.username, 'password123').expect(200);
  });

  it('stops one address trying many usernames (password spraying)', async () => {
    const from = '203.0.113.2';
    for (let i = 0; i < 12; i++) await login(from, `nobody_${i}`, 'password123').expect(401);
    expectRateLimited(await login(from, 'nobody_12', 'password123'), 60);
    await login('203.0.113.3', 'nobody_12', 'password123').expect(401);
  });

  it('stops guesses against one account spread over many addresses', async () => {
    for (let i = 0; i < 20; i++) await login(`192.0.2.${i + 1}`, carol.username, `wrong-pw-${i}`).expect(401);
    expectRateLimited(await login('192.0.2.100', carol.username, 'password123'), 3600);
    await login('192.0.2.100', bob.username, 'password123').expect(200);
  });

  it('limits HTTP writes per user, shared by every write route, while reads and other users go on', async () => {
    const channelId = await createChannel(t, bob); // bob's first write
    const sends = [];
    for (let i = 0; i < 9; i++) sends.push(await t.http().post(`/channels/${channelId}/messages`).set(bob.auth).send({ text: `m${i}`, clientMsgId: `m${i}` }));
    expect(sends.map((r) => r.status)).toEqual(Array(9).fill(201));
    expectRateLimited(await t.http().post(`/channels/${channelId}/messages`).set(bob.auth).send({ text: 'one more', clientMsgId: 'm9' }), 60);
    expectRateLimited(await t.http().post('/channels').set(bob.auth).send({ name: 'another-room', visibility: 'public' }), 60);
    await t.http().get(`/channels/${channelId}/messages`).set(bob.auth).expect(200);
    await t.http().post(`/channels/${channelId}/join`).set(alice.auth).expect(200);
    await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text: 'hi', clientMsgId: 'a1' }).expect(201);
  });

  it('shares the write budget between HTTP and WebSocket: sends over both count together', async () => {
    const channelId = await createChannel(t, carol); // carol's first write
    const { client } = await TestClient.connect(t.wsUrl, carol.token);
    for (let i = 0; i < 5; i++) await t.http().post(`/channels/${channelId}/messages`).set(carol.auth).send({ text: `h${i}`, clientMsgId: `h${i}` }).expect(201);
    for (let i = 0; i < 4; i++) {
      client.send('message.send', { channelId, text: `w${i}`, clientMsgId: `w${i}` });
      await client.next('message.ack');
    }
    client.send('message.send', { channelId, text: 'over', clientMsgId: 'w-over', ref: 'over' });
    const refused = await client.next('error');
    expect(refused).toMatchObject({ code: 'rate_limited', ref: 'over', clientMsgId: 'w-over', retryAfterMs: expect.any(Number) });
    expectRateLimited(await t.http().post(`/channels/${channelId}/messages`).set(carol.auth).send({ text: 'over', clientMsgId: 'h-over' }), 60);
    expect(client.closed).toBeNull(); // refused, not disconnected
    await client.close();
  });

  it('limits reads per user', async () => {
    const dave = await registerUser(t, 'dave');
    for (let i = 0; i < 20; i++) await t.http().get('/conversations').set(dave.auth).expect(200);
    expectRateLimited(await t.http().get('/users/me').set(dave.auth), 60);
    await t.http().get('/users/me').set(alice.auth).expect(200);
  });

  it('does not count requests refused for a bad token against anyone', async () => {
    for (let i = 0; i < 30; i++) await t.http().get('/conversations').set('Authorization', 'Bearer nope').expect(401);
    await t.http().get('/conversations').set(carol.auth).expect(200);
  });

  it('documents 429 with Retry-After on the limited routes', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body;
    for (const [path, method] of [
      ['/auth/login', 'post'], ['/auth/register', 'post'], ['/channels/{id}/messages', 'post'], ['/channels', 'post'],
      ['/channels/{id}/join', 'post'], ['/dms', 'post'], ['/channels/{id}/read', 'post'], ['/channels/{id}/messages', 'get'],
    ]) {
      expect([path, method, doc.paths[path][method].responses['429']]).toEqual([path, method, expect.objectContaining({ headers: { 'Retry-After': expect.any(Object) } })]);
    }
    expect(doc.paths['/health'].get.responses['429']).toBeUndefined();
  });
});

describe('registration flood', () => {
  let t: TestApp;
  beforeAll(async () => {
    // No TRUST_PROXY: X-Forwarded-For is the client's word, and changing it must not help.
    t = await startApp('sqlite', { HTTP_RATE_LIMIT: 'true', HTTP_RATE_LIMIT_REGISTER: '5/1h' });
  });
  afterAll(() => t.close());

  it('answers 429 after the per-address limit, however X-Forwarded-For is set', async () => {
    const register = (i: number) =>
      t.http().post('/auth/register').set('X-Forwarded-For', `10.0.0.${i}`).send({ username: `flood_${i}`, password: 'password123' });
    for (let i = 0; i < 5; i++) await register(i).expect(201);
    expectRateLimited(await register(5), 3600);
    // Logging in is another budget.
    await t.http().post('/auth/login').send({ username: 'flood_0', password: 'password123' }).expect(200);
  });
});

describe('HTTP_RATE_LIMIT=false', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp('sqlite', { HTTP_RATE_LIMIT: 'false', HTTP_RATE_LIMIT_LOGIN: '1/1h' });
  });
  afterAll(() => t.close());

  it('limits nothing', async () => {
    for (let i = 0; i < 5; i++) await t.http().post('/auth/login').send({ username: 'x_user', password: 'password123' }).expect(401);
  });
});

/** Growing delays: on top of the windows, failures in a row cost more and more waiting. */
describe('login back-off', () => {
  let t: TestApp;
  beforeAll(async () => {
    // Windows wide enough that only the back-off answers.
    t = await startApp('sqlite', { ...LIMITS, HTTP_RATE_LIMIT_LOGIN: '100/1m', HTTP_RATE_LIMIT_LOGIN_IP: '100/1m' });
  });
  afterAll(() => t.close());

  const login = (from: string, username: string, password: string) =>
    t.http().post('/auth/login').set('X-Forwarded-For', from).send({ username, password });

  it('makes each failed login in a row past five wait longer (1 s, 2 s, …), and forgets them on success', async () => {
    const dave = await registerUser(t, 'dave');
    const from = '203.0.113.9';
    for (let i = 0; i < 5; i++) await login(from, dave.username, `wrong-${i}`).expect(401);
    await login(from, dave.username, 'wrong-5').expect(401); // the sixth failure in a row: 1 s to wait
    const first = await login(from, dave.username, 'wrong-6');
    expect(first.status).toBe(429);
    expect(first.body.message).toMatch(/failed logins in a row/);
    expect(first.body.retryAfterMs).toBeLessThanOrEqual(1000);
    await new Promise((r) => setTimeout(r, first.body.retryAfterMs + 50));
    await login(from, dave.username, 'wrong-7').expect(401); // the seventh: 2 s
    const second = await login(from, dave.username, 'password123');
    expect(second.status).toBe(429);
    expect(second.body.retryAfterMs).toBeGreaterThan(1000);
    await new Promise((r) => setTimeout(r, second.body.retryAfterMs + 50));
    await login(from, dave.username, 'password123').expect(200);
    // Forgotten: the count starts again.
    await login(from, dave.username, 'wrong-again').expect(401);
    await login(from, dave.username, 'wrong-again-2').expect(401);
  });
});
