import { randomUUID } from 'node:crypto';
import { DATABASES, registerUser, startApp, suiteApp, TestApp } from './helpers/test-app.js';
import { REDIS_SERVER_AVAILABLE } from './helpers/redis-server.js';
import { twoAppsOnPostgres } from './helpers/two-instances.js';
import { HandshakeRefused, TestClient } from './helpers/ws-client.js';

/** Profiles, the server API (/admin with PARLEY_API_KEYS), system messages and the audit log. */

const KEY = 'test-api-key-0123456789abcdef';
const OTHER_KEY = 'other-api-key-0123456789abcdef';
const api = { Authorization: `ApiKey ${KEY}` };
let n = 0;
/** The suite's app, read when used (it starts in beforeAll). */
const lazy = (suite: { readonly t: TestApp }): TestApp => new Proxy({} as TestApp, { get: (_target, prop) => suite.t[prop as keyof TestApp] });
const ext = (p = 'ext') => `${p}|${Date.now().toString(36)}${++n}`;
const uname = (p = 'u') => `${p}${++n}_${Math.random().toString(36).slice(2, 6)}`;

describe.each(DATABASES)('profiles on %s', (db) => {
  const t = lazy(suiteApp(db));

  it('PATCH /users/me sets displayName, avatarUrl and metadata; null clears; GET /users/:id shows them to anyone', async () => {
    const [alice, bob] = await Promise.all([registerUser(t, 'prof'), registerUser(t, 'prof')]);
    const me = (await t.http().get('/users/me').set(alice.auth).expect(200)).body;
    expect(me).toMatchObject({ displayName: null, avatarUrl: null, metadata: {}, externalId: null, deactivated: false });
    const patched = await t.http().patch('/users/me').set(alice.auth).send({ displayName: 'Alice L.', avatarUrl: 'https://cdn.example.com/a.png', metadata: { team: 'design', n: 1 } }).expect(200);
    expect(patched.body).toMatchObject({ id: alice.id, displayName: 'Alice L.', avatarUrl: 'https://cdn.example.com/a.png', metadata: { team: 'design', n: 1 } });
    const seen = (await t.http().get(`/users/${alice.id}`).set(bob.auth).expect(200)).body;
    expect(seen).toEqual({ id: alice.id, username: alice.username, displayName: 'Alice L.', avatarUrl: 'https://cdn.example.com/a.png', metadata: { team: 'design', n: 1 }, deactivated: false });
    // Only the fields given change.
    await t.http().patch('/users/me').set(alice.auth).send({ avatarUrl: null }).expect(200);
    expect((await t.http().get(`/users/${alice.id}`).set(bob.auth).expect(200)).body).toMatchObject({ displayName: 'Alice L.', avatarUrl: null, metadata: { team: 'design', n: 1 } });
    await t.http().patch('/users/me').set(alice.auth).send({ displayName: null, metadata: {} }).expect(200);
    expect((await t.http().get('/users/me').set(alice.auth).expect(200)).body).toMatchObject({ displayName: null, metadata: {} });
  });

  it('messages keep the cheap sender ref {id, username} (profiles are fetched by id)', async () => {
    const alice = await registerUser(t, 'cheap');
    await t.http().patch('/users/me').set(alice.auth).send({ displayName: 'Alice', metadata: { big: 'x'.repeat(1000) } }).expect(200);
    const channelId = (await t.http().post('/channels').set(alice.auth).send({ name: `cheap-${++n}`, visibility: 'public' }).expect(201)).body.id;
    const sent = (await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text: 'hi', clientMsgId: 'c1' }).expect(201)).body;
    expect(sent.message).toMatchObject({ kind: 'user', sender: { id: alice.id, username: alice.username } });
    expect(Object.keys(sent.message.sender).sort()).toEqual(['id', 'username']);
  });

  it.each([
    ['avatarUrl not http(s)', { avatarUrl: 'ftp://example.com/a.png' }, 'avatarUrl'],
    ['avatarUrl javascript:', { avatarUrl: 'javascript:alert(1)' }, 'avatarUrl'],
    ['avatarUrl not a URL', { avatarUrl: 'https://' }, 'avatarUrl'],
    ['avatarUrl with credentials', { avatarUrl: 'https://user:pw@example.com/a.png' }, 'avatarUrl'],
    ['metadata an array', { metadata: [1, 2] }, 'metadata'],
    ['metadata a string', { metadata: 'x' }, 'metadata'],
    ['metadata null', { metadata: null }, 'metadata'],
    ['metadata over 4 KB', { metadata: { x: 'y'.repeat(4100) } }, 'metadata'],
    ['displayName empty', { displayName: '' }, 'displayName'],
    ['displayName invisible', { displayName: '\u200b' }, 'displayName'],
    ['displayName too long', { displayName: 'x'.repeat(65) }, 'displayName'],
    ['an unknown field', { nickname: 'x' }, 'nickname'],
  ])('refuses %s with 400 invalid_payload', async (_name, body, field) => {
    const u = await registerUser(t, 'bad');
    const res = await t.http().patch('/users/me').set(u.auth).send(body).expect(400);
    expect(res.body.code).toBe('invalid_payload');
    expect(Object.keys(res.body.details.fields)).toContain(field);
  });

  it('takes metadata of exactly 4 KB', async () => {
    const u = await registerUser(t, 'four');
    const metadata = { x: 'y'.repeat(4096 - '{"x":""}'.length) };
    await t.http().patch('/users/me').set(u.auth).send({ metadata }).expect(200);
  });

  it('GET /users/:id: 404 for an unknown id or the reserved system user, 400 for a non-UUID, 401 without a token', async () => {
    const u = await registerUser(t, 'look');
    expect((await t.http().get(`/users/${randomUUID()}`).set(u.auth).expect(404)).body.code).toBe('not_found');
    expect((await t.http().get('/users/00000000-0000-0000-0000-000000000000').set(u.auth).expect(404)).body.code).toBe('not_found');
    expect((await t.http().get('/users/nope').set(u.auth).expect(400)).body.code).toBe('invalid_payload');
    await t.http().get(`/users/${u.id}`).expect(401);
    await t.http().patch('/users/me').send({ displayName: 'x' }).expect(401);
  });

  it('reserves the name "system": not registrable, not found by search or as a DM peer, cannot log in', async () => {
    const u = await registerUser(t, 'sys');
    expect((await t.http().post('/auth/register').send({ username: 'System', password: 'password123' }).expect(409)).body.code).toBe('conflict');
    expect((await t.http().post('/auth/login').send({ username: 'system', password: '!' }).expect(401)).body.code).toBe('unauthorized');
    expect((await t.http().get('/users?query=syste').set(u.auth).expect(200)).body).toEqual([]);
    await t.http().post('/dms').set(u.auth).send({ username: 'system' }).expect(404);
  });
});

describe.each(DATABASES)('the server API on %s', (db) => {
  const suite = suiteApp(db, { PARLEY_API_KEYS: ` ${OTHER_KEY} , ${KEY}` });
  const t = lazy(suite);
  const track = <C extends TestClient>(c: C): C => suite.track(c);

  const upsert = (externalId: string, body: Record<string, unknown>) => t.http().put(`/admin/users/${encodeURIComponent(externalId)}`).set(api).send(body);
  const token = async (externalId: string, body: Record<string, unknown> = {}) =>
    (await t.http().post(`/admin/users/${encodeURIComponent(externalId)}/tokens`).set(api).send(body).expect(201)).body as { accessToken: string; expiresIn: number };

  describe('keys', () => {
    it('refuses a call without a key, with a wrong key, with a user token, or another scheme: 401 unauthorized', async () => {
      const u = await registerUser(t, 'nokey');
      for (const headers of [{}, { Authorization: 'ApiKey wrong-key-0123456789abcdefgh' }, u.auth, { Authorization: `Bearer ${KEY}` }, { Authorization: `ApiKey${KEY}` }]) {
        const res = await t.http().put('/admin/users/x1').set(headers).send({ username: uname() }).expect(401);
        expect(res.body.code).toBe('unauthorized');
      }
      await t.http().get('/admin/audit').expect(401);
    });

    it('takes every key of PARLEY_API_KEYS (spaces around the commas ignored)', async () => {
      await t.http().get('/admin/audit?limit=1').set({ Authorization: `ApiKey ${OTHER_KEY}` }).expect(200);
      await t.http().get('/admin/audit?limit=1').set({ Authorization: `apikey   ${KEY}` }).expect(200);
    });

    it('is off without PARLEY_API_KEYS: every call 401', async () => {
      const off = await startApp(db);
      try {
        expect((await off.http().get('/admin/audit').set(api).expect(401)).body.message).toMatch(/PARLEY_API_KEYS/);
      } finally {
        await off.close();
      }
    });

    it('answers 429 rate_limited with Retry-After after repeated wrong keys from one address, even for the right key then', async () => {
      const limited = await startApp(db, { PARLEY_API_KEYS: KEY, HTTP_RATE_LIMIT: 'true' });
      try {
        let res;
        for (let i = 0; i < 8; i++) {
          res = await limited.http().get('/admin/audit').set({ Authorization: 'ApiKey wrong-key-0123456789abcdefgh' });
          if (res.status === 429) break;
          expect(res.status).toBe(401);
        }
        expect(res!.status).toBe(429);
        expect(res!.body).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) });
        expect(res!.headers['retry-after']).toBeDefined();
        expect((await limited.http().get('/admin/audit').set(api).expect(429)).body.code).toBe('rate_limited');
      } finally {
        await limited.close();
      }
    });
  });

  describe('users', () => {
    it('PUT creates (201) then updates (200) a user by external id; the profile shows everywhere', async () => {
      const id = ext('auth0');
      const name = uname('ann');
      const created = await upsert(id, { username: name, displayName: 'Ann', metadata: { plan: 'pro' } }).expect(201);
      expect(created.body).toMatchObject({ externalId: id, username: name, displayName: 'Ann', avatarUrl: null, metadata: { plan: 'pro' }, deactivatedAt: null });
      const updated = await upsert(id, { username: name.toUpperCase(), avatarUrl: 'http://img.example/ann.png' }).expect(200);
      expect(updated.body).toMatchObject({ id: created.body.id, displayName: 'Ann', avatarUrl: 'http://img.example/ann.png', metadata: { plan: 'pro' } });
      const { accessToken } = await token(id);
      const me = (await t.http().get('/users/me').set({ Authorization: `Bearer ${accessToken}` }).expect(200)).body;
      expect(me).toMatchObject({ id: created.body.id, externalId: id, displayName: 'Ann', avatarUrl: 'http://img.example/ann.png' });
    });

    it('refuses a username change, or a username taken by someone else: 409 conflict', async () => {
      const taken = await registerUser(t, 'taken');
      expect((await upsert(ext(), { username: taken.username }).expect(409)).body.code).toBe('conflict');
      const id = ext();
      await upsert(id, { username: uname() }).expect(201);
      expect((await upsert(id, { username: uname() }).expect(409)).body.code).toBe('conflict');
    });

    it.each([
      ['a space in the external id', 'a b', { username: 'valid_name' }, 'externalId'],
      ['a slash in the external id', 'a%2Fb', { username: 'valid_name' }, 'externalId'],
      ['an external id over 128 characters', 'x'.repeat(129), { username: 'valid_name' }, 'externalId'],
      ['a bad username', 'fine-id', { username: 'no spaces' }, 'username'],
      ['no username', 'fine-id', {}, 'username'],
      ['metadata an array', 'fine-id', { username: 'valid_name', metadata: [] }, 'metadata'],
      ['metadata over 4 KB', 'fine-id', { username: 'valid_name', metadata: { a: 'b'.repeat(5000) } }, 'metadata'],
      ['an avatarUrl of another scheme', 'fine-id', { username: 'valid_name', avatarUrl: 'data:image/png;base64,AAAA' }, 'avatarUrl'],
    ])('refuses %s with 400 invalid_payload', async (_name, id, body, field) => {
      const res = await t.http().put(`/admin/users/${id}`).set(api).send(body).expect(400);
      expect(res.body.code).toBe('invalid_payload');
      expect(Object.keys(res.body.details.fields)).toContain(field);
    });

    it('mints tokens that work over HTTP, at the WebSocket handshake and for tickets, each a session of its own; ttl is cut to JWT_TTL', async () => {
      const id = ext();
      await upsert(id, { username: uname() }).expect(201);
      const short = await token(id, { ttl: 120 });
      expect(short.expiresIn).toBe(120);
      const long = await token(id, { ttl: 365 * 86400 });
      expect(long.expiresIn).toBe(t.config.jwtTtlSeconds);
      const auth = { Authorization: `Bearer ${short.accessToken}` };
      expect((await t.http().get('/auth/sessions').set(auth).expect(200)).body).toHaveLength(2);
      const { client, ready } = await TestClient.connect(t.wsUrl, short.accessToken);
      track(client);
      expect(ready.user.username).toBeDefined();
      const { ticket } = (await t.http().post('/auth/ws-ticket').set(auth).expect(201)).body;
      track(await TestClient.open(`${t.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null)).next('session.ready');
      // Logout ends that session only.
      await t.http().post('/auth/logout').set(auth).expect(204);
      expect(await client.waitClosed()).toEqual({ code: 1008, reason: 'session ended' });
      await t.http().get('/users/me').set({ Authorization: `Bearer ${long.accessToken}` }).expect(200);
    });

    it('refuses tokens for an unknown user (404), a bad ttl (400), a bad external id (400)', async () => {
      expect((await t.http().post(`/admin/users/${ext()}/tokens`).set(api).send({}).expect(404)).body.code).toBe('not_found');
      const id = ext();
      await upsert(id, { username: uname() }).expect(201);
      await t.http().post(`/admin/users/${encodeURIComponent(id)}/tokens`).set(api).send({ ttl: 0 }).expect(400);
      await t.http().post(`/admin/users/${encodeURIComponent(id)}/tokens`).set(api).send({ ttl: 'long' }).expect(400);
      await t.http().post('/admin/users/a%20b/tokens').set(api).send({}).expect(400);
    });

    it('deactivation closes the user\'s sockets (1008), refuses their tokens on HTTP and WebSocket, and refuses new tokens (403)', async () => {
      const id = ext();
      await upsert(id, { username: uname() }).expect(201);
      const first = await token(id);
      const { client } = await TestClient.connect(t.wsUrl, first.accessToken);
      track(client);
      const res = await t.http().post(`/admin/users/${encodeURIComponent(id)}/deactivate`).set(api).expect(200);
      expect(res.body.deactivatedAt).toEqual(expect.any(String));
      expect(await client.waitClosed()).toEqual({ code: 1008, reason: 'session ended' });
      expect((await t.http().get('/users/me').set({ Authorization: `Bearer ${first.accessToken}` }).expect(401)).body.code).toBe('unauthorized');
      await expect(TestClient.open(t.wsUrl, first.accessToken)).rejects.toEqual(new HandshakeRefused(401));
      expect((await t.http().post(`/admin/users/${encodeURIComponent(id)}/tokens`).set(api).send({}).expect(403)).body.code).toBe('forbidden');
      // Idempotent; the profile says so.
      await t.http().post(`/admin/users/${encodeURIComponent(id)}/deactivate`).set(api).expect(200);
      const u = await registerUser(t, 'viewer');
      expect((await t.http().get(`/users/${res.body.id}`).set(u.auth).expect(200)).body.deactivated).toBe(true);
      await t.http().post(`/admin/users/${ext()}/deactivate`).set(api).expect(404);
    });

    it('a user made by the server API has no password: login answers 401 whatever is tried', async () => {
      const name = uname();
      const id = ext();
      await upsert(id, { username: name }).expect(201);
      for (const password of ['anything-at-all', '!', '']) {
        expect((await t.http().post('/auth/login').send({ username: name, password }).expect(401)).body.code).toBe('unauthorized');
      }
      // Nor can a password be set without the (nonexistent) current one.
      const { accessToken } = await token(id);
      const res = await t.http().post('/users/me/password').set({ Authorization: `Bearer ${accessToken}` }).send({ currentPassword: '!', newPassword: 'a new password' }).expect(401);
      expect(res.body.code).toBe('unauthorized');
    });
  });

  describe('channels and messages', () => {
    it('creates a channel with members (accepted at once), adds members, and posts as a user and as the system', async () => {
      const [a, b, c] = [ext('a'), ext('b'), ext('c')];
      for (const id of [a, b, c]) await upsert(id, { username: uname() }).expect(201);
      const ta = await token(a);
      const { client: ca } = await TestClient.connect(t.wsUrl, ta.accessToken);
      track(ca);
      const channel = (await t.http().post('/admin/channels').set(api).send({ name: `proj-${++n}`, visibility: 'private', members: [a, b, a] }).expect(201)).body;
      expect(channel).toMatchObject({ visibility: 'private', memberCount: 2 });
      const conv = await ca.next('conversation.update', (d) => d.conversation.channelId === channel.id);
      expect(conv.conversation.accepted).toBe(true);

      const tc = await token(c);
      const added = (await t.http().post(`/admin/channels/${channel.id}/members`).set(api).send({ externalIds: [c, b] }).expect(201)).body;
      expect(added.added.map((u: { id: string }) => u.id)).toHaveLength(1); // b was in already
      await ca.next('member.joined', (d) => d.channelId === channel.id && d.user.id === added.added[0].id);
      const { client: cc } = await TestClient.connect(t.wsUrl, tc.accessToken);
      track(cc);

      const asA = (await t.http().post(`/admin/channels/${channel.id}/messages`).set(api).send({ text: 'from a', as: a, clientMsgId: 'a-1' }).expect(201)).body;
      expect(asA).toMatchObject({ duplicate: false, message: { kind: 'user', seq: 1, text: 'from a' } });
      expect((await t.http().post(`/admin/channels/${channel.id}/messages`).set(api).send({ text: 'from a', as: a, clientMsgId: 'a-1' }).expect(201)).body.duplicate).toBe(true);
      const sys = (await t.http().post(`/admin/channels/${channel.id}/messages`).set(api).send({ text: 'Carol joined the project' }).expect(201)).body;
      expect(sys.message).toMatchObject({ kind: 'system', sender: null, seq: 2, text: 'Carol joined the project' });
      for (const client of [ca, cc]) {
        expect((await client.next('message.new', (d) => d.message.seq === 2)).message).toMatchObject({ kind: 'system', sender: null });
      }
      // System messages count as unread for every member, and show in history.
      const history = (await t.http().get(`/channels/${channel.id}/messages`).set({ Authorization: `Bearer ${tc.accessToken}` }).expect(200)).body;
      expect(history.messages.map((m: { kind: string }) => m.kind)).toEqual(['user', 'system']);
      const convs = (await t.http().get('/conversations').set({ Authorization: `Bearer ${ta.accessToken}` }).expect(200)).body;
      expect(convs.find((x: { channelId: string }) => x.channelId === channel.id)).toMatchObject({ headSeq: 2, lastReadSeq: 1, unreadCount: 1, lastMessage: { kind: 'system', sender: null } });
      // Idempotent system messages by clientMsgId.
      const once = (await t.http().post(`/admin/channels/${channel.id}/messages`).set(api).send({ text: 'notice', clientMsgId: 'sys-1' }).expect(201)).body;
      const twice = (await t.http().post(`/admin/channels/${channel.id}/messages`).set(api).send({ text: 'notice', clientMsgId: 'sys-1' }).expect(201)).body;
      expect(twice).toEqual({ duplicate: true, message: once.message });
      // ... per channel: the same key in another channel is a conflict, not that channel's message.
      const other = (await t.http().post('/admin/channels').set(api).send({ name: `other-${++n}`, visibility: 'public' }).expect(201)).body;
      expect((await t.http().post(`/admin/channels/${other.id}/messages`).set(api).send({ text: 'notice', clientMsgId: 'sys-1' }).expect(409)).body.code).toBe('conflict');
    });

    it('refuses unknown members (404 naming them), a taken public name (409), unknown or DM channels (404), non-members and deactivated users as senders', async () => {
      const a = ext('a');
      await upsert(a, { username: uname() }).expect(201);
      const missing = ext('missing');
      const res = await t.http().post('/admin/channels').set(api).send({ name: `x-${++n}`, visibility: 'public', members: [a, missing] }).expect(404);
      expect(res.body).toMatchObject({ code: 'not_found', details: { externalIds: [missing] } });
      const name = `pub-${++n}`;
      const pub = (await t.http().post('/admin/channels').set(api).send({ name, visibility: 'public' }).expect(201)).body;
      expect((await t.http().post('/admin/channels').set(api).send({ name: name.toUpperCase(), visibility: 'public' }).expect(409)).body.code).toBe('conflict');
      await t.http().post('/admin/channels').set(api).send({ name: '-bad', visibility: 'public' }).expect(400);
      await t.http().post('/admin/channels').set(api).send({ name: 'ok', visibility: 'secret' }).expect(400);
      await t.http().post('/admin/channels').set(api).send({ name: 'ok', visibility: 'public', members: ['bad id'] }).expect(400);

      await t.http().post(`/admin/channels/${randomUUID()}/members`).set(api).send({ externalIds: [a] }).expect(404);
      await t.http().post(`/admin/channels/${pub.id}/members`).set(api).send({ externalIds: [missing] }).expect(404);
      await t.http().post(`/admin/channels/${pub.id}/members`).set(api).send({ externalIds: [] }).expect(400);
      await t.http().post('/admin/channels/nope/members').set(api).send({ externalIds: [a] }).expect(400);

      expect((await t.http().post(`/admin/channels/${pub.id}/messages`).set(api).send({ text: 'hi', as: a }).expect(403)).body.code).toBe('forbidden');
      await t.http().post(`/admin/channels/${pub.id}/messages`).set(api).send({ text: 'hi', as: missing }).expect(404);
      await t.http().post(`/admin/channels/${randomUUID()}/messages`).set(api).send({ text: 'hi' }).expect(404);
      await t.http().post(`/admin/channels/${pub.id}/messages`).set(api).send({ text: '' }).expect(400);
      // A DM is not the server API's to post in.
      const [x, y] = await Promise.all([registerUser(t, 'dmx'), registerUser(t, 'dmy')]);
      const dm = (await t.http().post('/dms').set(x.auth).send({ username: y.username }).expect(200)).body;
      await t.http().post(`/admin/channels/${dm.channelId}/messages`).set(api).send({ text: 'hi' }).expect(404);
      // A deactivated user can be neither added nor post.
      await t.http().post(`/admin/channels/${pub.id}/members`).set(api).send({ externalIds: [a] }).expect(201);
      await t.http().post(`/admin/users/${encodeURIComponent(a)}/deactivate`).set(api).expect(200);
      expect((await t.http().post(`/admin/channels/${pub.id}/messages`).set(api).send({ text: 'hi', as: a }).expect(403)).body.code).toBe('forbidden');
      await t.http().post(`/admin/channels/${pub.id}/members`).set(api).send({ externalIds: [a] }).expect(404);
    });
  });

  describe('audit log', () => {
    it('records every API call (who, what, on what, status) and deactivations, newest first, in cursor pages', async () => {
      const id = ext('aud');
      await t.http().get('/admin/audit?limit=1').set(api).expect(200); // so the page below is not the last one
      await upsert(id, { username: uname() }).expect(201);
      await t.http().post(`/admin/users/${encodeURIComponent(id)}/tokens`).set(api).send({ ttl: 'x' }).expect(400);
      await t.http().post(`/admin/users/${encodeURIComponent(id)}/deactivate`).set(api).expect(200);
      const page = (await t.http().get('/admin/audit?limit=4').set(api).expect(200)).body;
      expect(page.entries.map((e: { action: string }) => e.action)).toEqual(['api.user.deactivate', 'user.deactivated', 'api.user.token', 'api.user.upsert']);
      const actor = page.entries[0].actor;
      expect(actor).toMatch(/^apikey:[0-9a-f]{12}$/);
      expect(JSON.stringify(page)).not.toContain(KEY);
      expect(page.entries[0]).toMatchObject({ target: `user:${id}`, status: 200, details: { method: 'POST' } });
      expect(page.entries[2]).toMatchObject({ target: `user:${id}`, status: 400 });
      expect(page.entries[3]).toMatchObject({ target: `user:${id}`, status: 201 });
      const next = (await t.http().get(`/admin/audit?limit=2&cursor=${page.nextCursor}`).set(api).expect(200)).body;
      expect(next.entries[0].id < page.entries[3].id).toBe(true);
      // The reads are audited too; a refused key is not an API call (nothing to attribute).
      const latest = (await t.http().get('/admin/audit?limit=1').set(api).expect(200)).body;
      expect(latest.entries[0].action).toBe('api.audit.read');
      await t.http().get('/admin/audit?limit=0').set(api).expect(400);
      await t.http().get('/admin/audit?cursor=nope').set(api).expect(400);
      let all = 0;
      let cursor: string | null = null;
      do {
        const p: { entries: unknown[]; nextCursor: string | null } = (await t.http().get(`/admin/audit?limit=50${cursor ? `&cursor=${cursor}` : ''}`).set(api).expect(200)).body;
        all += p.entries.length;
        cursor = p.nextCursor;
      } while (cursor);
      expect(all).toBeGreaterThan(5);
    });
  });
});

const postgres = process.env.DATABASE_URL?.startsWith('postgres');

describe('deactivation across instances (PostgreSQL + Redis)', () => {
  if (!postgres || !REDIS_SERVER_AVAILABLE) {
    it.skip('needs DATABASE_URL=postgres://… and redis-server: skipped', () => undefined);
    return;
  }
  const apps = twoAppsOnPostgres({ PARLEY_API_KEYS: KEY });
  let a: TestApp;
  let b: TestApp;
  beforeAll(() => {
    ({ a, b } = apps);
  });

  it('deactivating on A closes the user\'s sockets on A and B (1008), and both refuse their tokens; system messages reach members on both', async () => {
    const id = ext('multi');
    const other = ext('other');
    await a.http().put(`/admin/users/${encodeURIComponent(id)}`).set(api).send({ username: uname() }).expect(201);
    await a.http().put(`/admin/users/${encodeURIComponent(other)}`).set(api).send({ username: uname() }).expect(201);
    const t1 = (await a.http().post(`/admin/users/${encodeURIComponent(id)}/tokens`).set(api).send({}).expect(201)).body.accessToken;
    const t2 = (await b.http().post(`/admin/users/${encodeURIComponent(id)}/tokens`).set(api).send({}).expect(201)).body.accessToken;
    const t3 = (await b.http().post(`/admin/users/${encodeURIComponent(other)}/tokens`).set(api).send({}).expect(201)).body.accessToken;
    const channel = (await a.http().post('/admin/channels').set(api).send({ name: `multi-${++n}`, visibility: 'private', members: [id, other] }).expect(201)).body;
    const { client: onA } = await TestClient.connect(a.wsUrl, t1);
    const { client: onB } = await TestClient.connect(b.wsUrl, t2);
    const { client: otherOnB } = await TestClient.connect(b.wsUrl, t3);
    try {
      await a.http().post(`/admin/channels/${channel.id}/messages`).set(api).send({ text: 'system notice' }).expect(201);
      for (const c of [onA, onB, otherOnB]) expect((await c.next('message.new', (d) => d.message.channelId === channel.id, 10_000)).message).toMatchObject({ kind: 'system', sender: null });
      await a.http().post(`/admin/users/${encodeURIComponent(id)}/deactivate`).set(api).expect(200);
      expect(await onA.waitClosed(5000)).toEqual({ code: 1008, reason: 'session ended' });
      expect(await onB.waitClosed(5000)).toEqual({ code: 1008, reason: 'session ended' });
      for (const [app, tok] of [[a, t1], [b, t1], [a, t2], [b, t2]] as const) {
        await app.http().get('/users/me').set({ Authorization: `Bearer ${tok}` }).expect(401);
        await expect(TestClient.open(app.wsUrl, tok)).rejects.toEqual(new HandshakeRefused(401));
      }
      otherOnB.send('ping', { ref: 'alive' });
      await otherOnB.next('pong', (d) => d.ref === 'alive');
    } finally {
      await Promise.all([onA.close(), onB.close(), otherOnB.close()]);
    }
  });
});
