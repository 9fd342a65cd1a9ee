import { randomUUID } from 'node:crypto';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { Validator } from '@seriousme/openapi-schema-validator';
import { HealthService } from '../src/health/health.service.js';
import { SERVER_EVENTS } from '../src/realtime/server-events.js';
import { AsyncApiContract, OpenApiContract } from './helpers/contract.js';
import { createChannel, DATABASES, DbKind, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- documents are walked as plain JSON */

/**
 * The contract, proved: both documents validate, and every operation and every event is driven
 * through its success and error answers with the validating helpers (test/helpers/contract.ts),
 * so each real response and frame is checked against the document the server serves. The last
 * test of each block asserts that every documented (operation, status) pair and every server
 * event was seen: a status the code stops answering, or a new one nobody documented, shows here.
 */

const operations = (doc: any): { method: string; path: string; op: any }[] =>
  Object.entries(doc.paths).flatMap(([path, item]: [string, any]) =>
    Object.entries(item).map(([method, op]) => ({ method, path, op })),
  );
const concrete = (path: string) => path.replace('{seq}', '1').replace('{emoji}', encodeURIComponent('👍')).replace(/\{[^}]+\}/g, randomUUID());
const API_KEY = 'contract-api-key-0123456789abcdef';
const apiKey = { Authorization: `ApiKey ${API_KEY}` };

// Apps a test starts for itself are closed after it, whatever happens in it (an app left open
// would keep Jest from ever finishing).
const scopedApps = new Set<TestApp>();
async function scoped(db: DbKind, env: Record<string, string> = {}): Promise<TestApp> {
  const app = await startApp(db, env);
  const close = app.close;
  app.close = async () => {
    if (scopedApps.delete(app)) await close();
  };
  scopedApps.add(app);
  return app;
}
afterEach(async () => {
  for (const app of [...scopedApps]) await app.close().catch(() => undefined);
});

/** Every schema object in a document, with its JSON path. */
function* schemaObjects(node: unknown, path = '#'): Generator<[string, any]> {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* schemaObjects(node[i], `${path}/${i}`);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  yield [path, node];
  for (const [k, v] of Object.entries(node)) if (k !== 'example' && k !== 'examples') yield* schemaObjects(v, `${path}/${k}`);
}

describe('the documents', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp('sqlite');
  });
  afterAll(() => t.close());

  it('OpenAPI: validates against the OpenAPI 3.0 schema', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body;
    expect(doc.openapi).toMatch(/^3\.0\./);
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('OpenAPI: nullable only beside a type, never beside allOf or $ref; ids, seqs, counts and times typed', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body;
    const problems: string[] = [];
    for (const [path, node] of schemaObjects(doc.components.schemas)) {
      if (node.nullable !== undefined && (node.type === undefined || node.allOf || node.$ref)) problems.push(`${path}: nullable without a type, or beside allOf/$ref`);
      for (const [name, prop] of Object.entries<any>(node.properties ?? {})) {
        const at = `${path}/properties/${name}`;
        if (prop.$ref || prop.allOf || prop.oneOf) continue;
        if (/^(id|.+Id)$/.test(name) && !['clientMsgId', 'sessionId', 'externalId'].includes(name) && prop.format !== 'uuid') problems.push(`${at}: an id without format uuid`);
        if (/(^seq|Seq|Count|^statusCode|Ms|^expiresIn)$/.test(name) && prop.type !== 'integer') problems.push(`${at}: not an integer`);
        if (/At$/.test(name) && prop.format !== 'date-time') problems.push(`${at}: a time without format date-time`);
      }
    }
    for (const { method, path, op } of operations(doc)) {
      for (const p of op.parameters ?? []) {
        if (['id', 'limit', 'before', 'after'].includes(p.name) && !(p.schema.format === 'uuid' || p.schema.type === 'integer')) {
          problems.push(`${method} ${path} parameter ${p.name}: ${JSON.stringify(p.schema)}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('OpenAPI: names the address it was asked at as the server; PUBLIC_URL wins', async () => {
    expect((await t.http().get('/docs-json').set('Host', 'chat.example:8443').expect(200)).body.servers).toEqual([
      { url: 'http://chat.example:8443', description: expect.any(String) },
    ]);
    // Without TRUST_PROXY, X-Forwarded-* are the client's word: ignored.
    const forwarded = await t.http().get('/docs-json').set('Host', 'a.example').set('X-Forwarded-Host', 'evil.example').set('X-Forwarded-Proto', 'https');
    expect(forwarded.body.servers[0].url).toBe('http://a.example');
    // A Host that is not a plain address is never echoed: the document stays relative.
    expect((await t.http().get('/docs-json').set('Host', 'a.example/"><script>').expect(200)).body.servers).toEqual([{ url: '/', description: expect.any(String) }]);

    const behindProxy = await scoped('sqlite', { TRUST_PROXY: 'loopback' });
    const viaProxy = await behindProxy.http().get('/docs-json').set('X-Forwarded-Host', 'chat.example').set('X-Forwarded-Proto', 'https').expect(200);
    expect(viaProxy.body.servers[0].url).toBe('https://chat.example');
    await behindProxy.close();
    const configured = await scoped('sqlite', { PUBLIC_URL: 'https://chat.example.com/parley/' });
    expect((await configured.http().get('/docs-json').set('Host', 'ignored.example').expect(200)).body.servers[0].url).toBe('https://chat.example.com/parley');
    const asyncapi = (await configured.http().get('/asyncapi.json').expect(200)).body;
    expect(asyncapi.servers.parley).toMatchObject({ host: 'chat.example.com', protocol: 'wss', pathname: '/parley' });
    await configured.close();
  });

  it('OpenAPI: public routes say security: [], the others bearer (or the server API key), and the server agrees', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body;
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'Authorization' });
    const publicOps: string[] = [];
    for (const { method, path, op } of operations(doc)) {
      expect([`${method} ${path}`, op.security]).toEqual([`${method} ${path}`, expect.any(Array)]);
      const bearer = op.security.some((s: object) => 'bearer' in s || 'apiKey' in s);
      // Exactly the server API's routes take the key, and nothing else does.
      expect([`${method} ${path}`, op.security.some((s: object) => 'apiKey' in s)]).toEqual([`${method} ${path}`, path.startsWith('/admin/')]);
      if (!bearer) publicOps.push(`${method.toUpperCase()} ${path}`);
      const res = await (t.http() as any)[method](concrete(path)).send({});
      expect([`${method} ${path}`, res.status === 401]).toEqual([`${method} ${path}`, bearer]);
    }
    expect(publicOps.sort()).toEqual([
      'GET /asyncapi.json', 'GET /health', 'GET /health/ready', 'GET /metrics', 'POST /auth/login', 'POST /auth/refresh', 'POST /auth/register',
    ]);
  });

  it('OpenAPI: /metrics asks for METRICS_TOKEN exactly when it is set', async () => {
    const open = (await t.http().get('/docs-json').expect(200)).body.paths['/metrics'].get;
    expect(open.security).toEqual([]);
    expect(open.responses['401']).toBeUndefined();
    const guarded = await scoped('sqlite', { METRICS_TOKEN: 'metrics-token-0123456789' });
    const op = (await guarded.http().get('/docs-json').expect(200)).body.paths['/metrics'].get;
    expect(op.security).toEqual([{ metrics: [] }]);
    expect((await guarded.http().get('/metrics').expect(401)).body.code).toBe('unauthorized');
    await guarded.http().get('/metrics').set('Authorization', 'Bearer metrics-token-0123456789').expect(200);
    await guarded.close();
  });

  it('AsyncAPI: the parser finds no error and no warning', async () => {
    const doc = (await t.http().get('/asyncapi.json').expect(200)).body;
    const { document, diagnostics } = await new Parser().parse(JSON.stringify(doc));
    const serious = diagnostics.filter((d) => d.severity <= DiagnosticSeverity.Warning).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
    expect(serious).toEqual([]);
    expect(document).toBeDefined();
  });

  it('AsyncAPI: names the address asked at, /ws once, and the three ways to authenticate', async () => {
    const doc = (await t.http().get('/asyncapi.json').set('Host', 'chat.example:8080').expect(200)).body;
    expect(doc.servers).toEqual({ parley: expect.objectContaining({ host: 'chat.example:8080', protocol: 'ws' }) });
    expect(doc.servers.parley.pathname).toBeUndefined();
    expect(doc.channels.ws.address).toBe('/ws');
    expect(doc.servers.parley.security.map((s: { $ref: string }) => s.$ref.split('/').pop())).toEqual(['bearer', 'token', 'ticket']);
    expect(doc.components.securitySchemes).toMatchObject({
      bearer: { type: 'http', scheme: 'bearer' },
      token: { type: 'httpApiKey', in: 'query', name: 'token' },
      ticket: { type: 'httpApiKey', in: 'query', name: 'ticket' },
    });
  });

  it('AsyncAPI: seqs are integers, ids uuids, times date-times; client frames are closed', async () => {
    const doc = (await t.http().get('/asyncapi.json').expect(200)).body;
    const problems: string[] = [];
    for (const [path, node] of [...schemaObjects(doc.components.schemas), ...schemaObjects(doc.channels.ws.messages)]) {
      for (const [name, prop] of Object.entries<any>(node.properties ?? {})) {
        if (prop.$ref || prop.oneOf || name === 'data' || name === 'event') continue;
        const at = `${path}/properties/${name}`;
        if (/^(id|.+Id)$/.test(name) && !['clientMsgId', 'sessionId'].includes(name) && prop.format !== 'uuid') problems.push(`${at}: id without format uuid`);
        if (/(^seq|Seq|Count|Ms|^limit)$/.test(name) && prop.type !== 'integer') problems.push(`${at}: not an integer`);
        if (/(At|Time)$/.test(name) && prop.format !== 'date-time') problems.push(`${at}: time without format date-time`);
      }
    }
    expect(problems).toEqual([]);
    for (const [id, message] of Object.entries<any>(doc.channels.ws.messages)) {
      if (id.startsWith('client_')) expect([id, message.payload.properties.data.additionalProperties]).toEqual([id, false]);
    }
  });

  it('the validators are not vacuous: an extra field, a wrong type, an undocumented status or event fails', async () => {
    const u = await registerUser(t);
    const res = await t.rawHttp().get('/users/me').set(u.auth).expect(200);
    const seen = { method: 'get', url: '/users/me', status: 200, headers: res.headers, body: res.body, text: res.text };
    expect(t.contract.check(seen)).toBeNull();
    expect(t.contract.check({ ...seen, body: { ...res.body, passwordHash: 'x' } })).toMatch(/additional properties.*passwordHash/);
    expect(t.contract.check({ ...seen, body: { ...res.body, id: 'not-a-uuid' } })).toMatch(/\/id must match format "uuid"/);
    expect(t.contract.check({ ...seen, body: { ...res.body, createdAt: 1700000000000 } })).toMatch(/createdAt must be string/);
    expect(t.contract.check({ ...seen, status: 500 })).toMatch(/status not documented/);
    expect(t.contract.check({ ...seen, method: 'put' })).toMatch(/no such operation/);
    const err = { method: 'get', url: '/users/me', status: 401, headers: { 'content-type': 'application/json' }, text: '' };
    expect(t.contract.check({ ...err, body: { statusCode: 401, code: 'unauthorized', message: 'x' } })).toBeNull();
    expect(t.contract.check({ ...err, body: { statusCode: 401, code: 'forbidden', message: 'x' } })).toMatch(/code must be equal to one of the allowed values/);
    expect(t.contract.check({ ...err, body: { statusCode: 401, code: 'unauthorized', message: 'x', details: {} } })).toMatch(/additional properties/);

    const ws = (await AsyncApiContract.forWsUrl(t.wsUrl))!;
    const message = {
      id: randomUUID(), channelId: randomUUID(), seq: 1, rev: 1, kind: 'user', sender: { id: u.id, username: u.username }, text: 'hi', clientMsgId: 'c', createdAt: new Date().toISOString(),
      deleted: false, mentions: [], reactions: [],
    };
    expect(ws.checkServerFrame({ event: 'message.new', data: { message } })).toBeNull();
    expect(ws.checkServerFrame({ event: 'message.new', data: { message: { ...message, seq: '1' } } })).toMatch(/seq must be integer/);
    expect(ws.checkServerFrame({ event: 'message.new', data: { message, extra: true } })).toMatch(/additional properties/);
    expect(ws.checkServerFrame({ event: 'message.nope', data: {} })).toMatch(/undocumented event/);
    expect(ws.checkServerFrame({ event: 'error', data: { code: 'oops', message: 'x' } })).toMatch(/allowed values/);
  });
});

describe.each(DATABASES)('every operation and every event on %s', (db) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let doc: any;
  beforeAll(async () => {
    t = await startApp(db, { PARLEY_API_KEYS: API_KEY });
    [alice, bob, carol] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob'), registerUser(t, 'carol')]);
    doc = (await t.http().get('/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  it('answers every body-level error on every route: not JSON (400), too large (413), another charset (415)', async () => {
    for (const { method, path } of operations(doc)) {
      const req = () => (t.http() as any)[method](concrete(path)).set(alice.auth);
      expect((await req().set('Content-Type', 'application/json').send('{"x":').expect(400)).body.code).toBe('invalid_payload');
      expect((await req().send({ x: 'a'.repeat(150_000) }).expect(413)).body.code).toBe('too_large');
      expect((await req().set('Content-Type', 'application/json; charset=latin1').send('{}').expect(415)).body.code).toBe('invalid_payload');
    }
  });

  it('auth: register, login, refresh, sessions, tickets, password, logout', async () => {
    const http = t.http;
    await http().post('/auth/register').send({ username: alice.username.toUpperCase(), password: 'password123' }).expect(409);
    await http().post('/auth/register').send({ username: 'x', password: 'short' }).expect(400);
    const dave = (await http().post('/auth/register').send({ username: `dave_${Date.now()}`, password: 'password123' }).expect(201)).body;
    const login = (await http().post('/auth/login').send({ username: dave.user.username, password: 'password123' }).expect(200)).body;
    await http().post('/auth/login').send({ username: dave.user.username, password: 'wrong-password' }).expect(401);
    await http().post('/auth/login').send({ username: 5 }).expect(400);
    const refreshed = (await http().post('/auth/refresh').send({ refreshToken: login.refreshToken }).expect(200)).body;
    await http().post('/auth/refresh').send({ refreshToken: 'nonsense' }).expect(401);
    await http().post('/auth/refresh').send({}).expect(400);
    const auth = { Authorization: `Bearer ${refreshed.accessToken}` };
    const sessions = (await http().get('/auth/sessions').set(auth).expect(200)).body;
    expect(sessions.length).toBe(2); // the register's, and the login's (refreshed)
    const other = sessions.find((s: { current: boolean }) => !s.current);
    await http().delete(`/auth/sessions/${other.id}`).set(auth).expect(204);
    await http().delete(`/auth/sessions/${randomUUID()}`).set(auth).expect(404);
    await http().delete('/auth/sessions/not-a-uuid').set(auth).expect(400);
    await http().post('/auth/ws-ticket').set(auth).expect(201);
    await http().post('/users/me/password').set(auth).send({ currentPassword: 'wrong-password', newPassword: 'password456' }).expect(401);
    await http().post('/users/me/password').set(auth).send({ currentPassword: 'password123', newPassword: 'short' }).expect(400);
    await http().post('/users/me/password').set(auth).send({ currentPassword: 'password123', newPassword: 'password456' }).expect(204);
    await http().post('/auth/logout').set(auth).expect(204);
    await http().post('/auth/logout').set(auth).expect(401);
  });

  it('users, channels, DMs, messages, read markers', async () => {
    const http = t.http;
    await http().get('/users/me').set(alice.auth).expect(200);
    await http().get('/users?query=b&limit=5').set(alice.auth).expect(200);
    await http().get('/users?limit=0').set(alice.auth).expect(400);
    await http().get('/conversations').set(alice.auth).expect(200);

    const pub = (await http().post('/channels').set(alice.auth).send({ name: `pub-${db}-${Date.now()}`, visibility: 'public', members: [bob.username] }).expect(201)).body;
    const priv = await createChannel(t, alice, [], 'private');
    await http().post('/channels').set(alice.auth).send({ name: pub.name, visibility: 'public' }).expect(409);
    await http().post('/channels').set(alice.auth).send({ name: 'x-nobody', visibility: 'public', members: ['no_such_user'] }).expect(404);
    await http().post('/channels').set(alice.auth).send({ name: '-bad', visibility: 'public' }).expect(400);
    await http().get('/channels?query=pub&limit=10').set(alice.auth).expect(200);
    await http().get('/channels?limit=abc').set(alice.auth).expect(400);

    await http().post(`/channels/${pub.id}/join`).set(carol.auth).expect(200);
    await http().post(`/channels/${priv}/join`).set(carol.auth).expect(404);
    await http().post('/channels/not-a-uuid/join').set(carol.auth).expect(400);
    await http().post(`/channels/${pub.id}/leave`).set(carol.auth).expect(204);
    await http().post(`/channels/${pub.id}/leave`).set(carol.auth).expect(403);
    await http().post(`/channels/${randomUUID()}/leave`).set(carol.auth).expect(404);
    await http().post('/channels/nope/leave').set(carol.auth).expect(400);

    await http().post('/dms').set(alice.auth).send({ username: bob.username }).expect(200);
    await http().post('/dms').set(alice.auth).send({ username: 'no_such_user' }).expect(404);
    await http().post('/dms').set(alice.auth).send({ username: alice.username }).expect(400);

    const sent = (await http().post(`/channels/${pub.id}/messages`).set(alice.auth).send({ text: 'hello', clientMsgId: 'c-1' }).expect(201)).body;
    expect((await http().post(`/channels/${pub.id}/messages`).set(alice.auth).send({ text: 'hello', clientMsgId: 'c-1' }).expect(200)).body.duplicate).toBe(true);
    await http().post(`/channels/${pub.id}/messages`).set(alice.auth).send({ text: '', clientMsgId: 'c-2' }).expect(400);
    await http().post(`/channels/${pub.id}/messages`).set(carol.auth).send({ text: 'hi', clientMsgId: 'c-3' }).expect(403);
    await http().post(`/channels/${priv}/messages`).set(carol.auth).send({ text: 'hi', clientMsgId: 'c-4' }).expect(404);
    await http().get(`/channels/${pub.id}/messages?limit=10`).set(alice.auth).expect(200);
    await http().get(`/channels/${pub.id}/messages?before=0`).set(alice.auth).expect(400);
    await http().get(`/channels/${pub.id}/messages`).set(carol.auth).expect(403);
    await http().get(`/channels/${priv}/messages`).set(carol.auth).expect(404);
    const marker = (await http().post(`/channels/${pub.id}/read`).set(bob.auth).send({ seq: sent.message.seq }).expect(200)).body;
    expect(marker.lastMessage).toMatchObject({ seq: 1 });
    await http().post(`/channels/${pub.id}/read`).set(bob.auth).send({ seq: -1 }).expect(400);
    await http().post(`/channels/${pub.id}/read`).set(carol.auth).send({ seq: 1 }).expect(403);
    await http().post(`/channels/${priv}/read`).set(carol.auth).send({ seq: 1 }).expect(404);
  });

  it('messages that change (v1.1): edit, delete, reactions, replies, search', async () => {
    const http = t.http;
    const pub = await createChannel(t, alice, [bob]);
    const priv = await createChannel(t, carol, [], 'private');
    const m = (path: string) => `/channels/${pub}/messages/${path}`;
    await http().post(`/channels/${pub}/messages`).set(alice.auth).send({ text: 'lunch today', clientMsgId: 'v11-1' }).expect(201);
    await http().post(`/channels/${pub}/messages`).set(bob.auth).send({ text: 'yes', clientMsgId: 'v11-2', replyToSeq: 1 }).expect(201);
    await http().post(`/channels/${pub}/messages`).set(bob.auth).send({ text: 'x', clientMsgId: 'v11-3', replyToSeq: 99 }).expect(404);
    await http().patch(m('1')).set(alice.auth).send({ text: 'lunch at noon' }).expect(200);
    await http().patch(m('1')).set(alice.auth).send({ text: '' }).expect(400);
    await http().patch(m('1')).set(bob.auth).send({ text: 'mine now' }).expect(403);
    await http().patch(m('99')).set(alice.auth).send({ text: 'x' }).expect(404);
    await http().put(`${m('1')}/reactions/${encodeURIComponent('👍')}`).set(bob.auth).expect(200);
    await http().put(`${m('1')}/reactions/nope`).set(bob.auth).expect(400);
    await http().put(`${m('1')}/reactions/${encodeURIComponent('👍')}`).set(carol.auth).expect(403);
    await http().put(`/channels/${priv}/messages/1/reactions/${encodeURIComponent('👍')}`).set(bob.auth).expect(404);
    await http().delete(`${m('1')}/reactions/${encodeURIComponent('👍')}`).set(bob.auth).expect(200);
    await http().delete(`${m('1')}/reactions/nope`).set(bob.auth).expect(400);
    await http().delete(`${m('1')}/reactions/${encodeURIComponent('👍')}`).set(carol.auth).expect(403);
    await http().delete(`/channels/${priv}/messages/1/reactions/${encodeURIComponent('👍')}`).set(bob.auth).expect(404);
    await http().delete(m('1')).set(bob.auth).expect(403);
    await http().delete(m('0')).set(alice.auth).expect(400);
    await http().delete(`/channels/${priv}/messages/1`).set(bob.auth).expect(404);
    await http().get('/search/messages').query({ q: 'yes' }).set(bob.auth).expect(200);
    await http().get('/search/messages').query({ q: '((' }).set(bob.auth).expect(400);
    await http().get('/search/messages').query({ q: 'yes', channelId: priv }).set(bob.auth).expect(404);
    await http().get('/search/messages').query({ q: 'yes', channelId: await createChannel(t, carol) }).set(bob.auth).expect(403);
    await http().delete(m('1')).set(alice.auth).expect(200);
    await http().patch(m('1')).set(alice.auth).send({ text: 'back' }).expect(409);
    await http().put(`${m('1')}/reactions/${encodeURIComponent('👍')}`).set(bob.auth).expect(409);
    await http().delete(`${m('1')}/reactions/${encodeURIComponent('👍')}`).set(bob.auth).expect(409);
    await http().post(`/channels/${pub}/messages`).set(bob.auth).send({ text: 'x', clientMsgId: 'v11-4', replyToSeq: 1 }).expect(409);
  });

  it('blocks and accepting conversations', async () => {
    const http = t.http;
    const [dan, eve] = await Promise.all([registerUser(t, 'dan'), registerUser(t, 'eve')]);
    await http().get('/users/me/blocks').set(dan.auth).expect(200);
    await http().post(`/users/${eve.id}/block`).set(dan.auth).expect(200);
    await http().post(`/users/${randomUUID()}/block`).set(dan.auth).expect(404);
    await http().post(`/users/${dan.id}/block`).set(dan.auth).expect(400);
    await http().post('/dms').set(eve.auth).send({ username: dan.username }).expect(403);
    await http().delete(`/users/${eve.id}/block`).set(dan.auth).expect(204);
    await http().delete(`/users/${randomUUID()}/block`).set(dan.auth).expect(404);
    const dm = (await http().post('/dms').set(eve.auth).send({ username: dan.username }).expect(200)).body;
    expect((await http().post(`/channels/${dm.channelId}/accept`).set(dan.auth).expect(200)).body.accepted).toBe(true);
    const pub = await createChannel(t, eve);
    await http().post(`/channels/${pub}/accept`).set(dan.auth).expect(403);
    await http().post(`/channels/${randomUUID()}/accept`).set(dan.auth).expect(404);
  });

  it('mute and unmute (notification.needed)', async () => {
    const http = t.http;
    const pub = await createChannel(t, alice, [bob]);
    expect((await http().post(`/channels/${pub}/mute`).set(bob.auth).expect(200)).body).toEqual({ channelId: pub, muted: true });
    expect((await http().delete(`/channels/${pub}/mute`).set(bob.auth).expect(200)).body).toEqual({ channelId: pub, muted: false });
    for (const method of ['post', 'delete'] as const) {
      await http()[method](`/channels/${pub}/mute`).set(carol.auth).expect(403);
      await http()[method](`/channels/${randomUUID()}/mute`).set(carol.auth).expect(404);
      await http()[method]('/channels/nope/mute').set(carol.auth).expect(400);
    }
  });

  it('channel administration: details, changes, archive, members, invitations, removals, roles, hidden DMs, pages', async () => {
    const http = t.http;
    const [owner, admin, member, outsider] = await Promise.all(['owner', 'admin', 'member', 'outsider'].map((p) => registerUser(t, p)));
    const { client: m } = await TestClient.connect(t.wsUrl, member.token);
    const id = await createChannel(t, owner, [admin, member], 'private');
    const pub = await createChannel(t, owner);
    const unknown = randomUUID();
    await http().get('/conversations?limit=1').set(member.auth).expect(200);
    await http().get(`/conversations?before=${unknown}`).set(member.auth).expect(404);
    await http().get('/conversations?limit=0').set(member.auth).expect(400);

    await http().get(`/channels/${id}`).set(member.auth).expect(200);
    await http().get(`/channels/${id}`).set(outsider.auth).expect(404);
    await http().get('/channels/nope').set(member.auth).expect(400);

    await http().patch(`/channels/${id}/members/${admin.id}`).set(owner.auth).send({ role: 'admin' }).expect(200);
    await m.next('member.updated', (d) => d.user.id === admin.id);
    await http().patch(`/channels/${id}/members/${admin.id}`).set(member.auth).send({ role: 'member' }).expect(403);
    await http().patch(`/channels/${id}/members/${outsider.id}`).set(owner.auth).send({ role: 'admin' }).expect(404);
    await http().patch(`/channels/${id}/members/${admin.id}`).set(owner.auth).send({ role: 'owner' }).expect(400);

    await http().patch(`/channels/${id}`).set(admin.auth).send({ topic: 'plans' }).expect(200);
    await m.next('channel.updated', (d) => d.conversation.topic === 'plans');
    await http().patch(`/channels/${id}`).set(member.auth).send({ topic: 'mine' }).expect(403);
    await http().patch(`/channels/${id}`).set(outsider.auth).send({ topic: 'x' }).expect(404);
    await http().patch(`/channels/${id}`).set(owner.auth).send({ visibility: 'hidden' }).expect(400);
    const pubName = (await http().get(`/channels/${pub}`).set(owner.auth).expect(200)).body.name;
    await http().patch(`/channels/${id}`).set(owner.auth).send({ name: pubName }).expect(409);

    await http().get(`/channels/${id}/members?limit=2`).set(member.auth).expect(200);
    await http().get(`/channels/${id}/members?limit=0`).set(member.auth).expect(400);
    await http().get(`/channels/${pub}/members`).set(outsider.auth).expect(403);
    await http().get(`/channels/${id}/members`).set(outsider.auth).expect(404);

    await http().post(`/channels/${id}/members`).set(admin.auth).send({ usernames: [carol.username] }).expect(200);
    await m.next('member.joined', (d) => d.user.id === carol.id && d.by?.id === admin.id);
    await http().post(`/channels/${id}/members`).set(member.auth).send({ usernames: [outsider.username] }).expect(403);
    await http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: ['no_such_user_x'] }).expect(404);
    await http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: [] }).expect(400);

    await http().delete(`/channels/${id}/members/${carol.id}`).set(admin.auth).expect(204);
    await m.next('member.left', (d) => d.user.id === carol.id && d.by?.id === admin.id);
    await http().delete(`/channels/${id}/members/${owner.id}`).set(admin.auth).expect(403);
    await http().delete(`/channels/${id}/members/${outsider.id}`).set(owner.auth).expect(404);
    await http().delete(`/channels/${id}/members/nope`).set(owner.auth).expect(400);

    await http().post(`/channels/${id}/archive`).set(admin.auth).expect(403);
    await http().post(`/channels/${unknown}/archive`).set(owner.auth).expect(404);
    await http().post('/channels/nope/archive').set(owner.auth).expect(400);
    await http().post(`/channels/${id}/archive`).set(owner.auth).expect(200);
    await m.next('channel.updated', (d) => d.conversation.archived === true);
    m.send('message.send', { channelId: id, text: 'x', clientMsgId: 'archived-1', ref: 'a' });
    expect(await m.next('error', (d) => d.ref === 'a')).toMatchObject({ code: 'forbidden', details: { reason: 'archived' } });
    expect((await http().post(`/channels/${id}/messages`).set(member.auth).send({ text: 'x', clientMsgId: 'archived-2' }).expect(403)).body.details).toEqual({ reason: 'archived' });

    const dm = (await http().post('/dms').set(member.auth).send({ username: outsider.username }).expect(200)).body;
    await http().post(`/channels/${dm.channelId}/hide`).set(member.auth).expect(204);
    await m.next('conversation.hidden', (d) => d.channelId === dm.channelId);
    await http().post(`/channels/${pub}/hide`).set(owner.auth).expect(403);
    await http().post(`/channels/${dm.channelId}/hide`).set(owner.auth).expect(404);
    await http().post('/channels/nope/hide').set(owner.auth).expect(400);
    await m.close();
  });

  it('profiles: PATCH /users/me and GET /users/:id', async () => {
    const http = t.http;
    await http().patch('/users/me').set(alice.auth).send({ displayName: 'Alice', avatarUrl: 'https://img.example/a.png', metadata: { a: 1 } }).expect(200);
    await http().patch('/users/me').set(alice.auth).send({ metadata: [] }).expect(400);
    await http().patch('/users/me').send({}).expect(401);
    await http().get(`/users/${alice.id}`).set(bob.auth).expect(200);
    await http().get('/users/nope').set(bob.auth).expect(400);
    await http().get(`/users/${randomUUID()}`).set(bob.auth).expect(404);
    await http().get(`/users/${alice.id}`).expect(401);
  });

  it('the server API: users, tokens, deactivation, channels, members, messages, audit', async () => {
    const http = t.http;
    const ext = `contract|${db}-${Date.now()}`;
    const other = `contract|other-${db}-${Date.now()}`;
    const path = (id: string) => `/admin/users/${encodeURIComponent(id)}`;
    await http().put(path(ext)).send({ username: `ext_${db}_${Date.now() % 1e6}` }).expect(401);
    const created = (await http().put(path(ext)).set(apiKey).send({ username: `ext_${db}_${Date.now() % 1e6}`, metadata: { plan: 'pro' } }).expect(201)).body;
    await http().put(path(ext)).set(apiKey).send({ username: created.username, displayName: 'Ext' }).expect(200);
    await http().put(path(ext)).set(apiKey).send({ username: alice.username }).expect(409);
    await http().put('/admin/users/a%20b').set(apiKey).send({ username: 'valid_name' }).expect(400);
    await http().put(path(other)).set(apiKey).send({ username: `oth_${db}_${Date.now() % 1e6}` }).expect(201);

    const { accessToken } = (await http().post(`${path(ext)}/tokens`).set(apiKey).send({ ttl: 600 }).expect(201)).body;
    await http().post(`${path(ext)}/tokens`).set(apiKey).send({ ttl: -1 }).expect(400);
    await http().post(`${path('nobody')}/tokens`).set(apiKey).send({}).expect(404);
    await http().post(`${path(ext)}/tokens`).send({}).expect(401);

    const channel = (await http().post('/admin/channels').set(apiKey).send({ name: `adm-${db}-${Date.now()}`, visibility: 'public', members: [ext] }).expect(201)).body;
    await http().post('/admin/channels').set(apiKey).send({ name: channel.name, visibility: 'public' }).expect(409);
    await http().post('/admin/channels').set(apiKey).send({ name: 'x', visibility: 'public', members: ['nobody'] }).expect(404);
    await http().post('/admin/channels').set(apiKey).send({ name: '-x', visibility: 'public' }).expect(400);
    await http().post('/admin/channels').send({}).expect(401);

    await http().post(`/admin/channels/${channel.id}/members`).set(apiKey).send({ externalIds: [other] }).expect(201);
    await http().post(`/admin/channels/${randomUUID()}/members`).set(apiKey).send({ externalIds: [other] }).expect(404);
    await http().post(`/admin/channels/${channel.id}/members`).set(apiKey).send({ externalIds: [] }).expect(400);
    await http().post(`/admin/channels/${channel.id}/members`).send({}).expect(401);

    const { client } = await TestClient.connect(t.wsUrl, accessToken);
    await http().post(`/admin/channels/${channel.id}/messages`).set(apiKey).send({ text: 'as ext', as: ext }).expect(201);
    await http().post(`/admin/channels/${channel.id}/messages`).set(apiKey).send({ text: 'a notice', clientMsgId: `n-${db}-${channel.id}` }).expect(201);
    const elsewhere = (await http().post('/admin/channels').set(apiKey).send({ name: `adm2-${db}-${Date.now()}`, visibility: 'public' }).expect(201)).body;
    await http().post(`/admin/channels/${elsewhere.id}/messages`).set(apiKey).send({ text: 'a notice', clientMsgId: `n-${db}-${channel.id}` }).expect(409);
    expect((await client.next('message.new', (d) => d.message.kind === 'system')).message.sender).toBeNull();
    await http().post(`/admin/channels/${channel.id}/messages`).set(apiKey).send({ text: '' }).expect(400);
    await http().post(`/admin/channels/${randomUUID()}/messages`).set(apiKey).send({ text: 'x' }).expect(404);
    await http().post(`/admin/channels/${channel.id}/messages`).send({}).expect(401);

    await http().post(`${path(ext)}/deactivate`).set(apiKey).expect(200);
    expect(await client.waitClosed()).toEqual({ code: 1008, reason: 'session ended' });
    await http().post(`${path(ext)}/tokens`).set(apiKey).send({}).expect(403);
    await http().post(`/admin/channels/${channel.id}/messages`).set(apiKey).send({ text: 'x', as: ext }).expect(403);
    await http().post(`${path('nobody')}/deactivate`).set(apiKey).expect(404);
    await http().post('/admin/users/a%20b/deactivate').set(apiKey).expect(400);
    await http().post(`${path(ext)}/deactivate`).expect(401);

    const page = (await http().get('/admin/audit?limit=2').set(apiKey).expect(200)).body;
    await http().get(`/admin/audit?cursor=${page.nextCursor}`).set(apiKey).expect(200);
    await http().get('/admin/audit?limit=0').set(apiKey).expect(400);
    await http().get('/admin/audit').expect(401);
  });

  it('quotas answer 403 (or 400 for members per request) with details.quota', async () => {
    const q = await scoped(db, { QUOTA_CHANNELS_CREATED_PER_USER: '1', QUOTA_CHANNELS_PER_USER: '2', QUOTA_MEMBERS_PER_REQUEST: '1' });
    try {
      const [u, v, w] = await Promise.all([registerUser(q, 'quota'), registerUser(q, 'quota'), registerUser(q, 'quota')]);
      const many = await q.http().post('/channels').set(u.auth).send({ name: 'q-many', visibility: 'public', members: [v.username, 'x'] }).expect(400);
      expect(many.body.details).toMatchObject({ quota: 'members_per_request', limit: 1 });
      await q.http().post('/channels').set(u.auth).send({ name: 'q-one', visibility: 'public' }).expect(201);
      expect((await q.http().post('/channels').set(u.auth).send({ name: 'q-two', visibility: 'public' }).expect(403)).body.details).toMatchObject({ quota: 'channels_created_per_user' });
      await q.http().post(`/channels/${await createChannel(q, v)}/join`).set(u.auth).expect(200);
      const third = await createChannel(q, w);
      expect((await q.http().post(`/channels/${third}/join`).set(u.auth).expect(403)).body.details).toMatchObject({ quota: 'channels_per_user', limit: 2 });
    } finally {
      await q.close();
    }
  });

  it('health, readiness (503 while draining), metrics and the AsyncAPI document', async () => {
    const draining = await scoped(db);
    try {
      await draining.http().get('/health').expect(200);
      await draining.http().get('/health/ready').expect(200);
      await draining.http().get('/metrics').expect(200);
      await draining.http().get('/asyncapi.json').expect(200);
      draining.app.get(HealthService).markDraining();
      expect((await draining.http().get('/health/ready').expect(503)).body).toMatchObject({ code: 'unavailable', details: { checks: { server: 'draining' } } });
    } finally {
      await draining.close();
    }
  });

  it('answers 429 on every rate-limited route, with Retry-After', async () => {
    const limited = await scoped(db, {
      HTTP_RATE_LIMIT: 'true', HTTP_RATE_LIMIT_REGISTER: '1/1h', HTTP_RATE_LIMIT_LOGIN: '1/1m', HTTP_RATE_LIMIT_WRITE: '1/1m', HTTP_RATE_LIMIT_READ: '1/1m',
    });
    const user = await registerUser(limited);
    // The user's write and read budgets are spent first, so no route succeeds (a logout would end the session).
    await limited.http().post('/auth/ws-ticket').set(user.auth).expect(201);
    await limited.http().get('/users/me').set(user.auth).expect(200);
    const limitedDoc = (await limited.http().get('/docs-json').expect(200)).body;
    for (const { method, path, op } of operations(limitedDoc)) {
      if (!op.responses['429']) continue;
      // The server API's 429 is earned by wrong keys (the login back-off's growing waits).
      const auth = path.startsWith('/admin/') ? { Authorization: 'ApiKey wrong-key-0123456789abcdefgh' } : user.auth;
      const call = () => (limited.http() as any)[method](concrete(path)).set(auth).send(path === '/auth/login' ? { username: user.username, password: 'x' } : {});
      let status = (await call()).status;
      for (let i = 0; status !== 429 && i < (path.startsWith('/admin/') ? 8 : 1); i++) status = (await call()).status;
      expect([method, path, status]).toEqual([method, path, 429]);
    }
    await limited.close();
  });

  it('every event both ways: successes and errors', async () => {
    const { client: a } = await TestClient.connect(t.wsUrl, alice.token);
    const { client: b } = await TestClient.connect(t.wsUrl, bob.token);
    const channelId = await createChannel(t, alice, [bob]);

    a.send('ping', { ref: 'p' });
    await a.next('pong', (d) => d.ref === 'p');
    a.send('message.send', { channelId, text: 'hi bob', clientMsgId: 'ws-1', ref: 's' });
    const ack = await a.next('message.ack', (d) => d.ref === 's');
    await b.next('message.new', (d) => d.message.id === ack.message.id);
    await b.next('conversation.update', (d) => d.conversation.channelId === channelId);
    a.send('message.send', { to: bob.username, text: 'a DM', clientMsgId: 'ws-2' });
    await a.next('message.ack', (d) => d.clientMsgId === 'ws-2');
    b.send('read', { channelId, seq: ack.message.seq, ref: 'r' });
    await b.next('conversation.update', (d) => d.ref === 'r');
    a.send('typing', { channelId });
    await b.next('typing', (d) => d.channelId === channelId);
    b.send('sync', { channels: { [channelId]: 0 }, ref: 'y' });
    await b.next('sync.result', (d) => d.ref === 'y');
    b.send('history', { channelId, limit: 10, ref: 'h' });
    await b.next('history.result', (d) => d.ref === 'h');
    // v1.1: changes of messages, answered by message.updated; sync by {seq, rev}.
    a.send('message.edit', { channelId, seq: ack.message.seq, text: 'hi bob!', ref: 'e' });
    await a.next('message.updated', (d) => d.ref === 'e');
    await b.next('message.updated', (d) => d.message.text === 'hi bob!');
    b.send('reaction.add', { channelId, seq: ack.message.seq, emoji: '👍', ref: 'ra' });
    await b.next('message.updated', (d) => d.ref === 'ra');
    b.send('reaction.remove', { channelId, seq: ack.message.seq, emoji: '👍', ref: 'rr' });
    await b.next('message.updated', (d) => d.ref === 'rr');
    b.send('sync', { channels: { [channelId]: { seq: 0, rev: 0 } }, ref: 'y2' });
    expect(await b.next('sync.result', (d) => d.ref === 'y2')).toMatchObject({ changes: [], headRev: expect.any(Number) });
    a.send('message.delete', { channelId, seq: ack.message.seq, ref: 'd' });
    expect((await a.next('message.updated', (d) => d.ref === 'd')).message.deleted).toBe(true);
    const name = `room-ws-${db}-${Date.now()}`;
    b.send('channel.join', { name, ref: 'j' });
    const joined = await b.next('channel.joined', (d) => d.ref === 'j');
    a.send('channel.join', { channelId: joined.conversation.channelId });
    await a.next('channel.joined', (d) => d.conversation.channelId === joined.conversation.channelId);
    await b.next('member.joined', (d) => d.user.id === alice.id);
    a.send('channel.leave', { channelId: joined.conversation.channelId, ref: 'l' });
    await a.next('channel.left', (d) => d.ref === 'l');
    await b.next('member.left', (d) => d.user.id === alice.id);
    // presence: bob's DM peer alice goes offline and comes back
    await a.close();
    await b.next('presence.update', (d) => d.user.id === alice.id && d.status === 'offline');
    const { client: a2 } = await TestClient.connect(t.wsUrl, alice.token);
    await b.next('presence.update', (d) => d.user.id === alice.id && d.status === 'online');

    // errors: bad_json, unknown_event, invalid_payload (several shapes), forbidden, not_found
    a2.sendRaw('{"event":');
    await a2.next('error', (d) => d.code === 'bad_json');
    a2.send('nope', { ref: 'u' });
    await a2.next('error', (d) => d.code === 'unknown_event' && d.ref === 'u');
    a2.send('message.send', { channelId, text: '', clientMsgId: 'bad-1', ref: 'v' });
    expect(await a2.next('error', (d) => d.ref === 'v')).toMatchObject({ code: 'invalid_payload', clientMsgId: 'bad-1', details: { fields: { text: expect.any(Array) } } });
    a2.send('read', { channelId, seq: 1.5 });
    await a2.next('error', (d) => d.code === 'invalid_payload');
    a2.send('sync', { channels: { 'not-a-uuid': 1 } });
    await a2.next('error', (d) => d.code === 'invalid_payload');
    const priv = await createChannel(t, carol, [], 'private');
    a2.send('sync', { channels: { [priv]: 0 }, ref: 'z' });
    expect(await a2.next('error', (d) => d.ref === 'z')).toMatchObject({ code: 'not_found', details: { channelId: priv } });
    const pub = await createChannel(t, carol);
    a2.send('typing', { channelId: pub });
    await a2.next('error', (d) => d.code === 'forbidden');
    a2.send('history', { channelId: randomUUID() });
    await a2.next('error', (d) => d.code === 'not_found');
    await Promise.all([a2.close(), b.close()]);
  });

  it('rate_limited frames carry retryAfterMs', async () => {
    const limited = await scoped(db, { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '1' });
    const user = await registerUser(limited);
    const { client } = await TestClient.connect(limited.wsUrl, user.token);
    for (let i = 0; i < 3; i++) client.send('ping', { ref: `p${i}` });
    expect(await client.next('error', (d) => d.code === 'rate_limited')).toMatchObject({ retryAfterMs: expect.any(Number) });
    await client.close();
    await limited.close();
  });

  it('saw every documented (operation, status) and every server event, each valid', () => {
    const documented = operations(doc).flatMap(({ method, path, op }) => Object.keys(op.responses).map((s) => `${method.toUpperCase()} ${path} ${s}`));
    expect(documented.filter((pair) => !OpenApiContract.seen.has(pair))).toEqual([]);
    expect(SERVER_EVENTS.filter((e) => !AsyncApiContract.seen.has(e))).toEqual([]);
    for (const code of ['bad_json', 'unknown_event', 'invalid_payload', 'forbidden', 'not_found', 'rate_limited']) {
      expect(AsyncApiContract.seen).toContain(`error:${code}`);
    }
  });
});
