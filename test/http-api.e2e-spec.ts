import jwt from 'jsonwebtoken';
import { createChannel, DATABASES, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';

const SECRET = 'test-secret-0123456789abcdef';

describe.each(DATABASES)('HTTP API on %s', (db) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  beforeAll(async () => {
    // One test creates a channel of 1,000 members at once (quotas have their own suite).
    t = await startApp(db, { QUOTA_MEMBERS_PER_REQUEST: '1000' });
    [alice, bob, carol] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob'), registerUser(t, 'carol')]);
  });
  afterAll(() => t.close());

  const send = (u: TestUser, channelId: string, text: string, clientMsgId: string) =>
    t.http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text, clientMsgId });

  describe('auth', () => {
    it('registers and returns a user and a token, never the password hash', async () => {
      const res = await t.http().post('/auth/register').send({ username: 'Dave_1', password: 'password123' }).expect(201);
      expect(res.body.user).toEqual({ id: expect.any(String), username: 'Dave_1' });
      expect(typeof res.body.accessToken).toBe('string');
      expect(JSON.stringify(res.body)).not.toMatch(/argon2|passwordHash|password_hash/);
    });

    it('refuses a taken username, whatever its case, with 409 conflict', async () => {
      const res = await t.http().post('/auth/register').send({ username: 'DAVE_1', password: 'password123' }).expect(409);
      expect(res.body).toMatchObject({ statusCode: 409, code: 'conflict' });
    });

    it('answers invalid_payload with field details for a bad username or short password', async () => {
      const res = await t.http().post('/auth/register').send({ username: 'a b', password: 'short' }).expect(400);
      expect(res.body.code).toBe('invalid_payload');
      expect(Object.keys(res.body.details.fields).sort()).toEqual(['password', 'username']);
    });

    it('answers invalid_payload for a body that is not JSON', async () => {
      const res = await t.http().post('/auth/login').set('Content-Type', 'application/json').send('{"username":').expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, code: 'invalid_payload', message: 'request body is not valid JSON' });
    });

    it('answers too_large (413) for a body over the limit', async () => {
      const res = await t.http().post('/auth/login').send({ username: 'x', password: 'y'.repeat(200_000) }).expect(413);
      expect(res.body).toMatchObject({ statusCode: 413, code: 'too_large' });
    });

    it('logs in case-insensitively and refuses a wrong password or unknown user with 401', async () => {
      await t.http().post('/auth/login').send({ username: alice.username.toUpperCase(), password: 'password123' }).expect(200);
      const wrong = await t.http().post('/auth/login').send({ username: alice.username, password: 'password124' }).expect(401);
      expect(wrong.body.code).toBe('unauthorized');
      await t.http().post('/auth/login').send({ username: 'nobody_here', password: 'password123' }).expect(401);
    });

    it.each([
      ['no token', undefined],
      ['a malformed header', 'Token abc'],
      ['a forged token', `Bearer ${jwt.sign({ sub: 'x', username: 'x' }, 'another-secret-0123456789')}`],
      ['an expired token', `Bearer ${jwt.sign({ sub: 'x', username: 'x', exp: Math.floor(Date.now() / 1000) - 10 }, SECRET)}`],
      ['an alg:none token', `Bearer ${jwt.sign({ sub: 'x', username: 'x' }, '', { algorithm: 'none' })}`],
    ])('refuses %s with 401 unauthorized', async (_, header) => {
      const req = t.http().get('/users/me');
      if (header) req.set('Authorization', header);
      const res = await req.expect(401);
      expect(res.body).toMatchObject({ statusCode: 401, code: 'unauthorized', message: expect.any(String) });
    });
  });

  describe('users', () => {
    it('returns the caller', async () => {
      const res = await t.http().get('/users/me').set(alice.auth).expect(200);
      expect(res.body).toMatchObject({ id: alice.id, username: alice.username, lastSeenAt: null });
    });

    it('finds users by prefix, case-insensitively, leaving out the caller', async () => {
      const res = await t.http().get(`/users?query=${bob.username.slice(0, 4).toUpperCase()}`).set(alice.auth).expect(200);
      expect(res.body.map((u: { id: string }) => u.id)).toContain(bob.id);
      const mine = await t.http().get(`/users?query=${alice.username}`).set(alice.auth).expect(200);
      expect(mine.body).toEqual([]);
    });
  });

  describe('channels', () => {
    it('creates a public channel with members, listed in the directory', async () => {
      const id = await createChannel(t, alice, [bob]);
      const dir = await t.http().get('/channels').set(carol.auth).expect(200);
      const entry = dir.body.find((c: { id: string }) => c.id === id);
      expect(entry).toMatchObject({ kind: 'channel', visibility: 'public', memberCount: 2, joined: false });
    });

    it('creates a channel with a thousand members at once', async () => {
      const names: string[] = [];
      for (let start = 0; start < 999; start += 111) {
        const chunk = await Promise.all(
          Array.from({ length: 111 }, (_, i) => t.http().post('/auth/register').send({ username: `bulk_${start + i}`, password: 'password123' }).expect(201)),
        );
        names.push(...chunk.map((r) => r.body.user.username));
      }
      // Unknown names are reported, all of them, before anything is created.
      const ghosts = Array.from({ length: 1 }, (_, i) => `ghost_${i}`);
      const missing = await t.http().post('/channels').set(alice.auth).send({ name: `big-${db}`, visibility: 'public', members: [...names, ...ghosts] }).expect(404);
      expect(missing.body.details.usernames).toEqual(['ghost_0']);
      const res = await t.http().post('/channels').set(alice.auth).send({ name: `big-${db}`, visibility: 'public', members: names }).expect(201);
      expect(res.body.memberCount).toBe(1000);
    });

    it('refuses a public channel\'s name with 409 and unknown members with 404', async () => {
      await t.http().post('/channels').set(alice.auth).send({ name: 'taken-name', visibility: 'public' }).expect(201);
      const dup = await t.http().post('/channels').set(bob.auth).send({ name: 'TAKEN-name', visibility: 'private' }).expect(409);
      expect(dup.body.code).toBe('conflict');
      expect((await t.http().post('/channels').set(carol.auth).send({ name: 'Taken-Name', visibility: 'public' }).expect(409)).body.code).toBe('conflict');
      const missing = await t.http().post('/channels').set(alice.auth).send({ name: 'x1', visibility: 'public', members: ['ghost_user'] }).expect(404);
      expect(missing.body).toMatchObject({ code: 'not_found', details: { usernames: ['ghost_user'] } });
    });

    it('keeps private channels out of the directory and out of reach of non-members', async () => {
      const id = await createChannel(t, alice, [bob], 'private');
      const dir = await t.http().get('/channels').set(carol.auth).expect(200);
      expect(dir.body.map((c: { id: string }) => c.id)).not.toContain(id);
      expect((await t.http().post(`/channels/${id}/join`).set(carol.auth).expect(404)).body.code).toBe('not_found');
      expect((await t.http().get(`/channels/${id}/messages`).set(carol.auth).expect(404)).body.code).toBe('not_found');
      await t.http().get(`/channels/${id}/messages`).set(bob.auth).expect(200);
    });

    it('joins idempotently and leaves', async () => {
      const id = await createChannel(t, alice);
      const first = await t.http().post(`/channels/${id}/join`).set(carol.auth).expect(200);
      expect(first.body).toMatchObject({ joined: true, conversation: { channelId: id, kind: 'channel', unreadCount: 0 } });
      const again = await t.http().post(`/channels/${id}/join`).set(carol.auth).expect(200);
      expect(again.body.joined).toBe(false);
      await t.http().post(`/channels/${id}/leave`).set(carol.auth).expect(204);
      const after = await t.http().get(`/channels/${id}/messages`).set(carol.auth).expect(403);
      expect(after.body.code).toBe('forbidden');
    });

    it('does not count history from before joining as unread', async () => {
      const id = await createChannel(t, alice);
      await send(alice, id, 'before', 'before-join-1').expect(201);
      const res = await t.http().post(`/channels/${id}/join`).set(bob.auth).expect(200);
      expect(res.body.conversation).toMatchObject({ headSeq: 1, lastReadSeq: 1, unreadCount: 0 });
    });

    it('answers 404 for an unknown channel and 400 for an id that is not a uuid', async () => {
      expect((await t.http().post('/channels/00000000-0000-4000-8000-000000000000/join').set(alice.auth).expect(404)).body.code).toBe('not_found');
      expect((await t.http().get('/channels/not-a-uuid/messages').set(alice.auth).expect(400)).body.code).toBe('invalid_payload');
    });

    it('refuses to leave a channel one is not in (403) or a DM (403)', async () => {
      const id = await createChannel(t, alice);
      expect((await t.http().post(`/channels/${id}/leave`).set(carol.auth).expect(403)).body.code).toBe('forbidden');
      const dm = await t.http().post('/dms').set(alice.auth).send({ username: carol.username }).expect(200);
      await t.http().post(`/channels/${dm.body.channelId}/leave`).set(alice.auth).expect(403);
    });
  });

  describe('direct messages', () => {
    it('makes one DM per pair, seen from both sides with the peer as name', async () => {
      const a = await t.http().post('/dms').set(alice.auth).send({ username: bob.username }).expect(200);
      const b = await t.http().post('/dms').set(bob.auth).send({ username: alice.username.toUpperCase() }).expect(200);
      expect(a.body.channelId).toBe(b.body.channelId);
      expect(a.body).toMatchObject({ kind: 'dm', name: bob.username, accepted: true, peer: { id: bob.id, username: bob.username, status: 'offline' } });
      // Opening it from the other side does not accept it: posting in it (or accepting it) does.
      expect(b.body).toMatchObject({ kind: 'dm', name: alice.username, accepted: false, peer: { id: alice.id } });
      const bobs = await t.http().get('/conversations').set(bob.auth).expect(200);
      expect(bobs.body.map((c: { channelId: string }) => c.channelId)).toContain(a.body.channelId);
    });

    it('answers 404 for an unknown user and 400 for oneself', async () => {
      expect((await t.http().post('/dms').set(alice.auth).send({ username: 'ghost_user' }).expect(404)).body.code).toBe('not_found');
      expect((await t.http().post('/dms').set(alice.auth).send({ username: alice.username }).expect(400)).body.code).toBe('invalid_payload');
    });
  });

  describe('messages', () => {
    let channelId: string;
    beforeAll(async () => {
      channelId = await createChannel(t, alice, [bob]);
    });

    it('numbers messages 1, 2, 3 and answers 201 with the stored message', async () => {
      const replies = [];
      for (let i = 1; i <= 3; i++) replies.push((await send(alice, channelId, `hello ${i}`, `m-${i}`).expect(201)).body);
      expect(replies.map((r) => r.message.seq)).toEqual([1, 2, 3]);
      expect(replies[0]).toEqual({
        duplicate: false,
        message: {
          id: expect.any(String),
          channelId,
          seq: 1,
          rev: 1,
          deleted: false,
          mentions: [],
          reactions: [],
          kind: 'user',
          sender: { id: alice.id, username: alice.username },
          text: 'hello 1',
          clientMsgId: 'm-1',
          createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
      });
    });

    it('answers a retry with the original message, 200 and duplicate: true, storing nothing new', async () => {
      const first = await send(alice, channelId, 'once', 'retry-1').expect(201);
      const retry = await send(alice, channelId, 'once (retried)', 'retry-1').expect(200);
      expect(retry.body).toEqual({ duplicate: true, message: first.body.message });
      const page = await t.http().get(`/channels/${channelId}/messages?after=${first.body.message.seq - 1}`).set(alice.auth).expect(200);
      expect(page.body.messages.filter((m: { clientMsgId: string }) => m.clientMsgId === 'retry-1')).toHaveLength(1);
    });

    it('refuses empty, blank and over-long texts and a missing clientMsgId', async () => {
      for (const body of [{ text: '', clientMsgId: 'x' }, { text: '   ', clientMsgId: 'x' }, { text: 'a'.repeat(4001), clientMsgId: 'x' }, { text: 'hi' }]) {
        const res = await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send(body).expect(400);
        expect(res.body.code).toBe('invalid_payload');
        expect(res.body.details.fields).toBeDefined();
      }
      await send(alice, channelId, 'a'.repeat(4000), 'max-len').expect(201);
    });

    it('refuses a send from a non-member of a public channel with 403', async () => {
      expect((await send(carol, channelId, 'hi', 'c-1').expect(403)).body.code).toBe('forbidden');
    });

    it('keeps seq gap-free under many concurrent sends', async () => {
      const id = await createChannel(t, alice, [bob, carol]);
      const users = [alice, bob, carol];
      const replies = await Promise.all(
        Array.from({ length: 90 }, (_, i) => send(users[i % 3], id, `burst ${i}`, `burst-${i}`).expect(201)),
      );
      const seqs = replies.map((r) => r.body.message.seq).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 90 }, (_, i) => i + 1));
    });

    it('pages history by seq cursor, ascending, with hasMore', async () => {
      const id = await createChannel(t, alice, [bob]);
      for (let i = 1; i <= 7; i++) await send(alice, id, `p${i}`, `page-${i}`).expect(201);
      const seqs = (body: { messages: { seq: number }[] }) => body.messages.map((m) => m.seq);
      const latest = await t.http().get(`/channels/${id}/messages?limit=3`).set(bob.auth).expect(200);
      expect([seqs(latest.body), latest.body.hasMore]).toEqual([[5, 6, 7], true]);
      const older = await t.http().get(`/channels/${id}/messages?limit=3&before=5`).set(bob.auth).expect(200);
      expect([seqs(older.body), older.body.hasMore]).toEqual([[2, 3, 4], true]);
      const oldest = await t.http().get(`/channels/${id}/messages?limit=3&before=2`).set(bob.auth).expect(200);
      expect([seqs(oldest.body), oldest.body.hasMore]).toEqual([[1], false]);
      const forward = await t.http().get(`/channels/${id}/messages?limit=4&after=2`).set(bob.auth).expect(200);
      expect([seqs(forward.body), forward.body.hasMore]).toEqual([[3, 4, 5, 6], true]);
      const end = await t.http().get(`/channels/${id}/messages?after=6`).set(bob.auth).expect(200);
      expect([seqs(end.body), end.body.hasMore]).toEqual([[7], false]);
      const all = await t.http().get(`/channels/${id}/messages`).set(bob.auth).expect(200);
      expect(seqs(all.body)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    });

    it('refuses a limit outside 1..200 and a negative cursor', async () => {
      for (const q of ['limit=0', 'limit=201', 'limit=abc', 'before=0', 'after=-1']) {
        const res = await t.http().get(`/channels/${channelId}/messages?${q}`).set(alice.auth).expect(400);
        expect(res.body.code).toBe('invalid_payload');
      }
    });

    it('reads numbers in queries as plain decimals only: 0x10, 1e2 and 3.0 are not integers', async () => {
      for (const q of ['limit=0x10', 'limit=1e2', 'limit=3.0', 'limit=%2010', 'after=0b1']) {
        const res = await t.http().get(`/channels/${channelId}/messages?${q}`).set(alice.auth).expect(400);
        expect(res.body.message).toMatch(/must be an integer/);
      }
      await t.http().get('/users?query=a&limit=0x10').set(alice.auth).expect(400);
    });
  });

  describe('read markers and unread counts', () => {
    it('counts unread exactly, moves markers forward only and clamps them to the head', async () => {
      const id = await createChannel(t, alice, [bob]);
      for (let i = 1; i <= 5; i++) await send(alice, id, `u${i}`, `unread-${id}-${i}`).expect(201);
      const conv = async (u: TestUser) =>
        (await t.http().get('/conversations').set(u.auth).expect(200)).body.find((c: { channelId: string }) => c.channelId === id);
      expect(await conv(bob)).toMatchObject({ headSeq: 5, lastReadSeq: 0, unreadCount: 5, lastMessage: { seq: 5, text: 'u5' } });
      expect(await conv(alice)).toMatchObject({ headSeq: 5, lastReadSeq: 5, unreadCount: 0 });

      const read = await t.http().post(`/channels/${id}/read`).set(bob.auth).send({ seq: 3 }).expect(200);
      expect(read.body).toMatchObject({ lastReadSeq: 3, unreadCount: 2 });
      const back = await t.http().post(`/channels/${id}/read`).set(bob.auth).send({ seq: 1 }).expect(200);
      expect(back.body).toMatchObject({ lastReadSeq: 3, unreadCount: 2 });
      const beyond = await t.http().post(`/channels/${id}/read`).set(bob.auth).send({ seq: 99 }).expect(200);
      expect(beyond.body).toMatchObject({ lastReadSeq: 5, unreadCount: 0 });

      // Bob replies: his own message is never unread to him; Alice has one unread.
      await send(bob, id, 'reply', `reply-${id}`).expect(201);
      expect(await conv(bob)).toMatchObject({ headSeq: 6, lastReadSeq: 6, unreadCount: 0 });
      expect(await conv(alice)).toMatchObject({ headSeq: 6, lastReadSeq: 5, unreadCount: 1 });
    });

    it('refuses a negative or missing seq', async () => {
      const id = await createChannel(t, alice);
      await t.http().post(`/channels/${id}/read`).set(alice.auth).send({ seq: -1 }).expect(400);
      await t.http().post(`/channels/${id}/read`).set(alice.auth).send({}).expect(400);
    });

    it('lists conversations most recent first', async () => {
      const dave = await registerUser(t, 'dave');
      const older = await createChannel(t, dave);
      const newer = await createChannel(t, dave);
      await send(dave, newer, 'x', `order-1-${newer}`).expect(201);
      await send(dave, older, 'y', `order-2-${older}`).expect(201);
      const list = (await t.http().get('/conversations').set(dave.auth).expect(200)).body.map((c: { channelId: string }) => c.channelId);
      expect(list).toEqual([older, newer]);
    });
  });

  describe('health and documents', () => {
    it('answers liveness and readiness', async () => {
      expect((await t.http().get('/health').expect(200)).body).toEqual({ status: 'ok' });
      expect((await t.http().get('/health/ready').expect(200)).body).toEqual({ status: 'ok', checks: { database: 'ok' } });
    });

    it('serves the OpenAPI document with every endpoint of the contract, and Swagger UI', async () => {
      const doc = (await t.http().get('/docs-json').expect(200)).body;
      const paths = Object.keys(doc.paths);
      for (const p of [
        '/auth/register', '/auth/login', '/users/me', '/users', '/conversations', '/channels', '/channels/{id}/join',
        '/channels/{id}/leave', '/dms', '/channels/{id}/messages', '/channels/{id}/read', '/health', '/health/ready', '/metrics',
        '/channels/{id}/accept', '/users/{id}/block', '/users/me/blocks',
      ]) {
        expect(paths).toContain(p);
      }
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      await t.http().get('/docs').expect(200);
    });

    it('answers unknown routes with 404 not_found in the contract shape', async () => {
      expect((await t.http().get('/nope').expect(404)).body).toMatchObject({ statusCode: 404, code: 'not_found' });
    });
  });
});
