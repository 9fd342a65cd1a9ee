import jwt from 'jsonwebtoken';
import { DataSource } from 'typeorm';
import { SessionStore } from '../src/auth/session.store.js';
import { createChannel, DATABASES, freshDatabaseUrl, registerUser, suiteApp, startAppOn, TestApp, TestUser } from './helpers/test-app.js';
import { REDIS_SERVER_AVAILABLE } from './helpers/redis-server.js';
import { twoAppsOnPostgres } from './helpers/two-instances.js';
import { HandshakeRefused, TestClient } from './helpers/ws-client.js';

const SECRET = 'test-secret-0123456789abcdef';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Claims {
  sub: string;
  username: string;
  sid: string;
  exp: number;
  iat: number;
}
const claimsOf = (token: string) => jwt.decode(token) as Claims;

describe.each(DATABASES)('sessions, tickets and token rules on %s', (db) => {
  const suite = suiteApp(db);
  let t: TestApp;
  beforeAll(() => {
    t = suite.t;
  });

  async function connect(token: string) {
    const { client, ready } = await TestClient.connect(t.wsUrl, token);
    suite.track(client);
    return { client, ready };
  }
  async function openTicket(ticket: string) {
    const client = await TestClient.open(`${t.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null);
    suite.track(client);
    return client;
  }
  const login = async (u: TestUser, password = 'password123', userAgent = 'jest') => {
    const res = await t.http().post('/auth/login').set('User-Agent', userAgent).send({ username: u.username, password }).expect(200);
    return { token: res.body.accessToken as string, refreshToken: res.body.refreshToken as string, auth: { Authorization: `Bearer ${res.body.accessToken}` } };
  };
  const ticketFor = async (token: string) =>
    (await t.http().post('/auth/ws-ticket').set('Authorization', `Bearer ${token}`).expect(201)).body as { ticket: string; expiresIn: number };
  const deleteUserRow = (id: string) => t.app.get(DataSource).query(`DELETE FROM users WHERE id = '${id}'`);

  describe('login, register and refresh', () => {
    it('returns a refreshToken beside the accessToken; the access token carries the session id and an expiry', async () => {
      const res = await t.http().post('/auth/register').send({ username: `reg_${db}`, password: 'password123' }).expect(201);
      expect(res.body).toEqual({ user: expect.any(Object), accessToken: expect.any(String), refreshToken: expect.any(String), expiresIn: 3600 });
      const claims = claimsOf(res.body.accessToken);
      expect(claims).toMatchObject({ sub: res.body.user.id, sid: expect.any(String) });
      expect(claims.exp - claims.iat).toBe(3600);
      const again = await t.http().post('/auth/login').send({ username: `reg_${db}`, password: 'password123' }).expect(200);
      expect(again.body.refreshToken).toEqual(expect.any(String));
      expect(claimsOf(again.body.accessToken).sid).not.toBe(claims.sid); // a session per login
    });

    it('rotates on refresh: new access and refresh tokens of the same session, and the new refresh token works in turn', async () => {
      const u = await registerUser(t, 'rot');
      const first = await t.http().post('/auth/refresh').send({ refreshToken: u.refreshToken }).expect(200);
      expect(first.body).toEqual({ user: { id: u.id, username: u.username }, accessToken: expect.any(String), refreshToken: expect.any(String), expiresIn: 3600 });
      expect(first.body.refreshToken).not.toBe(u.refreshToken);
      expect(claimsOf(first.body.accessToken).sid).toBe(claimsOf(u.token).sid);
      await t.http().get('/users/me').set('Authorization', `Bearer ${first.body.accessToken}`).expect(200);
      const second = await t.http().post('/auth/refresh').send({ refreshToken: first.body.refreshToken }).expect(200);
      expect(second.body.refreshToken).not.toBe(first.body.refreshToken);
    });

    it('ends the whole session when an already-rotated refresh token comes back (theft detection)', async () => {
      const u = await registerUser(t, 'theft');
      const { client } = await connect(u.token);
      const rotated = await t.http().post('/auth/refresh').send({ refreshToken: u.refreshToken }).expect(200);
      const reuse = await t.http().post('/auth/refresh').send({ refreshToken: u.refreshToken }).expect(401);
      expect(reuse.body).toMatchObject({ statusCode: 401, code: 'unauthorized' });
      // Every token of the session is dead now, the legitimate holder's newer ones too.
      await t.http().post('/auth/refresh').send({ refreshToken: rotated.body.refreshToken }).expect(401);
      await t.http().get('/users/me').set('Authorization', `Bearer ${rotated.body.accessToken}`).expect(401);
      await t.http().get('/users/me').set(u.auth).expect(401);
      expect(await client.waitClosed(2000)).toEqual({ code: 1008, reason: 'session ended' });
    });

    it.each([
      ['garbage', 'not-a-token'],
      ['an unknown session', '0197a0e4-5b1a-7c2e-9d3f-000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
      ['an access token', null],
    ])('refuses %s as a refresh token with 401', async (_, token) => {
      const u = await registerUser(t, 'garb');
      const res = await t.http().post('/auth/refresh').send({ refreshToken: token ?? u.token }).expect(401);
      expect(res.body.code).toBe('unauthorized');
      // A guess does not end the session it names.
      await t.http().get('/users/me').set(u.auth).expect(200);
    });

    it('answers 401 unauthorized for any wrong credentials, a short or empty password included', async () => {
      const u = await registerUser(t, 'short');
      for (const password of ['x', '', 'short', 'password124']) {
        const res = await t.http().post('/auth/login').send({ username: u.username, password }).expect(401);
        expect(res.body).toMatchObject({ code: 'unauthorized', message: 'wrong username or password' });
      }
      await t.http().post('/auth/login').send({ username: 'no such user!', password: 'x' }).expect(401);
      // Still bounded in size: no credential is that long.
      const huge = await t.http().post('/auth/login').send({ username: u.username, password: 'y'.repeat(5000) }).expect(400);
      expect(huge.body.code).toBe('invalid_payload');
    });
  });

  describe('logout and the session list', () => {
    it("logout kills the refresh token, refuses the session's access tokens (HTTP and WebSocket) and closes its sockets with 1008 at once", async () => {
      const u = await registerUser(t, 'out');
      const other = await login(u);
      const { client: mine } = await connect(u.token);
      const { client: mine2 } = await connect(u.token);
      const { client: elsewhere } = await connect(other.token);
      await t.http().post('/auth/logout').set(u.auth).expect(204);
      expect(await mine.waitClosed(1000)).toEqual({ code: 1008, reason: 'session ended' });
      expect(await mine2.waitClosed(1000)).toEqual({ code: 1008, reason: 'session ended' });
      await t.http().get('/users/me').set(u.auth).expect(401);
      await t.http().post('/auth/refresh').send({ refreshToken: u.refreshToken }).expect(401);
      await expect(TestClient.open(t.wsUrl, u.token)).rejects.toEqual(new HandshakeRefused(401));
      await expect(TestClient.open(t.wsUrl, u.token, { query: true })).rejects.toEqual(new HandshakeRefused(401));
      // The user's other session goes on.
      elsewhere.send('ping', { ref: 'still' });
      expect(await elsewhere.next('pong', (d) => d.ref === 'still')).toBeDefined();
      await t.http().get('/users/me').set(other.auth).expect(200);
      const metrics = (await t.http().get('/metrics')).text;
      expect(metrics).toMatch(/parley_ws_closes_total\{reason="session_ended"\} [1-9]/);
    });

    it("lists the caller's live sessions, marks the current one, ends one by id, and answers 404 for another user's", async () => {
      const u = await registerUser(t, 'list');
      const second = await login(u, 'password123', 'phone/1.0');
      const stranger = await registerUser(t, 'stranger');
      const res = await t.http().get('/auth/sessions').set(u.auth).expect(200);
      expect(res.body).toHaveLength(2);
      const current = res.body.find((s: { current: boolean }) => s.current);
      const phone = res.body.find((s: { current: boolean }) => !s.current);
      expect(current).toMatchObject({ id: claimsOf(u.token).sid, createdAt: expect.any(String), lastUsedAt: expect.any(String) });
      expect(phone).toMatchObject({ id: claimsOf(second.token).sid, userAgent: 'phone/1.0', current: false });
      expect(new Date(phone.createdAt).toISOString()).toBe(phone.createdAt);

      const { client: phoneSocket } = await connect(second.token);
      const foreign = await t.http().delete(`/auth/sessions/${claimsOf(stranger.token).sid}`).set(u.auth).expect(404);
      expect(foreign.body.code).toBe('not_found');
      await t.http().get('/users/me').set(stranger.auth).expect(200);
      await t.http().delete('/auth/sessions/00000000-0000-4000-8000-000000000000').set(u.auth).expect(404);

      await t.http().delete(`/auth/sessions/${phone.id}`).set(u.auth).expect(204);
      expect(await phoneSocket.waitClosed(1000)).toEqual({ code: 1008, reason: 'session ended' });
      await t.http().get('/users/me').set(second.auth).expect(401);
      const after = await t.http().get('/auth/sessions').set(u.auth).expect(200);
      expect(after.body.map((s: { id: string }) => s.id)).toEqual([current.id]);
    });

    it('changes the password (401 on a wrong current one) and ends every other session, whose sockets close with 1008', async () => {
      const u = await registerUser(t, 'pw');
      const other = await login(u);
      const { client: otherSocket } = await connect(other.token);
      const { client: mySocket } = await connect(u.token);
      const wrong = await t.http().post('/users/me/password').set(u.auth).send({ currentPassword: 'password124', newPassword: 'a new password' }).expect(401);
      expect(wrong.body.code).toBe('unauthorized');
      const weak = await t.http().post('/users/me/password').set(u.auth).send({ currentPassword: 'password123', newPassword: 'short' }).expect(400);
      expect(weak.body.code).toBe('invalid_payload');
      await t.http().get('/users/me').set(other.auth).expect(200);

      await t.http().post('/users/me/password').set(u.auth).send({ currentPassword: 'password123', newPassword: 'a new password' }).expect(204);
      expect(await otherSocket.waitClosed(1000)).toEqual({ code: 1008, reason: 'session ended' });
      await t.http().get('/users/me').set(other.auth).expect(401);
      await t.http().post('/auth/refresh').send({ refreshToken: other.refreshToken }).expect(401);
      // The session that changed it goes on, its refresh token too.
      await t.http().get('/users/me').set(u.auth).expect(200);
      mySocket.send('ping', { ref: 'mine' });
      expect(await mySocket.next('pong', (d) => d.ref === 'mine')).toBeDefined();
      await t.http().post('/auth/refresh').send({ refreshToken: u.refreshToken }).expect(200);
      await t.http().post('/auth/login').send({ username: u.username, password: 'password123' }).expect(401);
      await t.http().post('/auth/login').send({ username: u.username, password: 'a new password' }).expect(200);
    });

    it('requires a valid access token for logout, sessions, tickets and the password', async () => {
      await t.http().post('/auth/logout').expect(401);
      await t.http().get('/auth/sessions').expect(401);
      await t.http().delete('/auth/sessions/00000000-0000-4000-8000-000000000000').expect(401);
      await t.http().post('/auth/ws-ticket').expect(401);
      await t.http().post('/users/me/password').send({ currentPassword: 'password123', newPassword: 'a new password' }).expect(401);
    });
  });

  describe('WebSocket tickets', () => {
    it('connects once with ?ticket=, as the session of the token that asked for it; a second use is refused with 401', async () => {
      const u = await registerUser(t, 'tix');
      const { ticket, expiresIn } = await ticketFor(u.token);
      expect(expiresIn).toBe(30);
      expect(ticket).not.toContain(u.token);
      const client = await openTicket(ticket);
      expect(await client.next('session.ready')).toMatchObject({ user: { id: u.id, username: u.username } });
      await expect(TestClient.open(`${t.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null)).rejects.toEqual(new HandshakeRefused(401));
      await expect(TestClient.open(`${t.wsUrl}?ticket=nonsense`, null)).rejects.toEqual(new HandshakeRefused(401));
      // The socket belongs to the session: logging out closes it.
      await t.http().post('/auth/logout').set(u.auth).expect(204);
      expect(await client.waitClosed(1000)).toEqual({ code: 1008, reason: 'session ended' });
    });

    it('refuses an expired ticket with 401', async () => {
      const u = await registerUser(t, 'old');
      const { ticket } = await ticketFor(u.token);
      await t.app.get(DataSource).query('UPDATE ws_tickets SET expires_at = 1');
      await expect(TestClient.open(`${t.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null)).rejects.toEqual(new HandshakeRefused(401));
    });

    it('lets exactly one of several simultaneous handshakes use a ticket', async () => {
      const u = await registerUser(t, 'race');
      const { ticket } = await ticketFor(u.token);
      const attempts = await Promise.allSettled(Array.from({ length: 6 }, () => TestClient.open(`${t.wsUrl}?ticket=${ticket}`, null)));
      const opened = attempts.filter((a): a is PromiseFulfilledResult<TestClient> => a.status === 'fulfilled').map((a) => a.value);
      opened.forEach((c) => suite.track(c));
      expect(opened).toHaveLength(1);
      for (const a of attempts) if (a.status === 'rejected') expect(a.reason).toEqual(new HandshakeRefused(401));
    });

    it("refuses a ticket of a session that has ended since", async () => {
      const u = await registerUser(t, 'late');
      const { ticket } = await ticketFor(u.token);
      await t.http().post('/auth/logout').set(u.auth).expect(204);
      await expect(TestClient.open(`${t.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null)).rejects.toEqual(new HandshakeRefused(401));
    });
  });

  describe('token rules', () => {
    it('refuses an access token without exp on HTTP and at the handshake', async () => {
      const u = await registerUser(t, 'noexp');
      const { sub, username, sid } = claimsOf(u.token);
      const forever = jwt.sign({ sub, username, sid }, SECRET, { algorithm: 'HS256' });
      await t.http().get('/users/me').set('Authorization', `Bearer ${forever}`).expect(401);
      await expect(TestClient.open(t.wsUrl, forever)).rejects.toEqual(new HandshakeRefused(401));
    });

    it('refuses an access token without a session id', async () => {
      const u = await registerUser(t, 'nosid');
      const bare = jwt.sign({ sub: u.id, username: u.username }, SECRET, { algorithm: 'HS256', expiresIn: 600 });
      await t.http().get('/users/me').set('Authorization', `Bearer ${bare}`).expect(401);
      await expect(TestClient.open(t.wsUrl, bare)).rejects.toEqual(new HandshakeRefused(401));
    });

    it('closes a connection whose token has expired on its next frame (1008), without waiting for the heartbeat', async () => {
      const u = await registerUser(t, 'exp');
      const { sub, username, sid } = claimsOf(u.token);
      const exp = Math.floor(Date.now() / 1000) + 2;
      const short = jwt.sign({ sub, username, sid, exp }, SECRET, { algorithm: 'HS256' });
      const { client } = await connect(short);
      client.send('ping', { ref: 'before' });
      expect(await client.next('pong', (d) => d.ref === 'before')).toBeDefined();
      await sleep(exp * 1000 - Date.now() + 50);
      client.send('ping', { ref: 'after' });
      expect(await client.waitClosed(1000)).toEqual({ code: 1008, reason: 'token expired' });
      expect(client.log.some((f) => f.event === 'pong' && f.data.ref === 'after')).toBe(false);
    });

    it('answers 401, never 500, to a token whose user no longer exists', async () => {
      const [ghost, bob] = await Promise.all([registerUser(t, 'ghost'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, bob, [ghost]);
      await deleteUserRow(ghost.id);
      const calls = [
        t.http().post('/channels').set(ghost.auth).send({ name: `ghost-room-${db}`, visibility: 'public' }),
        t.http().post('/dms').set(ghost.auth).send({ username: bob.username }),
        t.http().get('/users/me').set(ghost.auth),
        t.http().post(`/channels/${channelId}/messages`).set(ghost.auth).send({ text: 'boo', clientMsgId: 'g-1' }),
        t.http().post('/auth/ws-ticket').set(ghost.auth),
        t.http().post('/users/me/password').set(ghost.auth).send({ currentPassword: 'password123', newPassword: 'a new password' }),
        t.http().post('/auth/refresh').send({ refreshToken: ghost.refreshToken }),
      ];
      for (const res of await Promise.all(calls)) {
        expect([res.status, res.body.code]).toEqual([401, 'unauthorized']);
      }
      // The handshake is decided from the token alone; the session's first check closes it.
      const client = await TestClient.open(t.wsUrl, ghost.token);
      suite.track(client);
      expect(await client.waitClosed(2000)).toEqual({ code: 1008, reason: 'session ended' });
      expect(client.log.map((f) => f.event)).not.toContain('session.ready');
    });
  });

  describe('housekeeping', () => {
    it('deletes old tickets and sessions whose tokens can no longer be valid, never a live session', async () => {
      const ended = await registerUser(t, 'swept');
      const live = await registerUser(t, 'kept');
      await ticketFor(live.token);
      await t.http().post('/auth/logout').set(ended.auth).expect(204);
      const db = t.app.get(DataSource);
      const count = async (sql: string) => Number((await db.query(sql))[0].n);
      const ttl = t.config.jwtTtlSeconds * 1000;
      const store = t.app.get(SessionStore);
      // Now: nothing is old enough to go.
      await store.sweep(Date.now(), ttl, t.config.refreshTokenTtlSeconds * 1000);
      expect(await count(`SELECT COUNT(*) AS n FROM sessions WHERE id = '${claimsOf(ended.token).sid}'`)).toBe(1);
      // A token lifetime later: the ended session and the expired ticket go, the live session stays.
      await store.sweep(Date.now() + ttl + 120_000, ttl, t.config.refreshTokenTtlSeconds * 1000);
      expect(await count(`SELECT COUNT(*) AS n FROM sessions WHERE id = '${claimsOf(ended.token).sid}'`)).toBe(0);
      expect(await count('SELECT COUNT(*) AS n FROM ws_tickets')).toBe(0);
      await t.http().get('/users/me').set(live.auth).expect(200);
      await t.http().post('/auth/refresh').send({ refreshToken: live.refreshToken }).expect(200);
    });
  });

  describe('revoked sessions across restarts', () => {
    it('refuses a session revoked before the instance started (the revoked set is loaded at boot)', async () => {
      const dbUrl = freshDatabaseUrl(db);
      const first = await startAppOn({ url: dbUrl.url, cleanup: async () => undefined });
      const u = await registerUser(first, 'boot');
      const kept = await registerUser(first, 'kept');
      await first.http().post('/auth/logout').set(u.auth).expect(204);
      await first.close();
      const second = await startAppOn(dbUrl);
      try {
        await second.http().get('/users/me').set(u.auth).expect(401);
        await expect(TestClient.open(second.wsUrl, u.token)).rejects.toEqual(new HandshakeRefused(401));
        await second.http().get('/users/me').set(kept.auth).expect(200);
      } finally {
        await second.close();
      }
    });
  });
});

const postgres = process.env.DATABASE_URL?.startsWith('postgres');

describe('sessions across instances (PostgreSQL + Redis)', () => {
  if (!postgres || !REDIS_SERVER_AVAILABLE) {
    it.skip('needs DATABASE_URL=postgres://… and redis-server: skipped (two instances need a shared database and Redis)', () => undefined);
    return;
  }
  const apps = twoAppsOnPostgres();
  let a: TestApp;
  let b: TestApp;
  beforeAll(() => {
    ({ a, b } = apps);
  });

  it("logout on instance A closes the session's socket on instance B with 1008, and B refuses its token", async () => {
    const u = await registerUser(a, 'multi');
    const other = await b.http().post('/auth/login').send({ username: u.username, password: 'password123' }).expect(200);
    const { client: onB } = await TestClient.connect(b.wsUrl, u.token);
    const { client: otherOnB } = await TestClient.connect(b.wsUrl, other.body.accessToken);
    try {
      await a.http().post('/auth/logout').set(u.auth).expect(204);
      expect(await onB.waitClosed(2000)).toEqual({ code: 1008, reason: 'session ended' });
      await b.http().get('/users/me').set(u.auth).expect(401);
      await expect(TestClient.open(b.wsUrl, u.token)).rejects.toEqual(new HandshakeRefused(401));
      otherOnB.send('ping', { ref: 'alive' });
      expect(await otherOnB.next('pong', (d) => d.ref === 'alive')).toBeDefined();
    } finally {
      await otherOnB.close();
    }
  });

  it('a password change on A closes the other sessions on B; a ticket from A opens B once, and never again on A', async () => {
    const u = await registerUser(a, 'multipw');
    const other = await b.http().post('/auth/login').send({ username: u.username, password: 'password123' }).expect(200);
    const { client: otherOnB } = await TestClient.connect(b.wsUrl, other.body.accessToken);
    await a.http().post('/users/me/password').set(u.auth).send({ currentPassword: 'password123', newPassword: 'a new password' }).expect(204);
    expect(await otherOnB.waitClosed(2000)).toEqual({ code: 1008, reason: 'session ended' });

    const { ticket } = (await a.http().post('/auth/ws-ticket').set(u.auth).expect(201)).body;
    const onB = await TestClient.open(`${b.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null);
    try {
      await onB.next('session.ready');
      await expect(TestClient.open(`${a.wsUrl}?ticket=${encodeURIComponent(ticket)}`, null)).rejects.toEqual(new HandshakeRefused(401));
    } finally {
      await onB.close();
    }
  });
});
