import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { DataSource } from 'typeorm';
import { AsyncApiContract, ContractViolation } from './helpers/contract.js';
import { createChannel, DATABASES, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';
import { Frame, TestClient } from './helpers/ws-client.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- fuzzed payloads are any JSON */

/**
 * Property-based fuzzing of every HTTP route and every WebSocket event (fast-check). For any JSON
 * body, query, path parameter or frame, arbitrary or a near-valid mutation of a valid one:
 *  - no 500 and no `internal` error frame; every answer matches the served OpenAPI/AsyncAPI
 *    document (t.http() and TestClient check each one, test/helpers/contract.ts);
 *  - the server is exactly as strict as its documents: a body or frame the document refuses is
 *    refused (400, or an error frame answering it), and a document-valid one is never refused as
 *    invalid (strings free of control characters and lone surrogates, the documented global rule);
 *  - it stays responsive: /health and a WebSocket ping answer within RESPONSIVE_MS after each batch;
 *  - nothing the contract refuses is stored (checked in the database at the end);
 *  - an unhandled rejection fails the running test (Jest does that for every test).
 * Seeded: FUZZ_SEED=<n> replays a run (a failure prints its seed and path); FUZZ_RUNS scales the
 * number of runs per property (default 1: the file takes well under a minute per database).
 */

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const RESPONSIVE_MS = 1000;
const API_KEY = 'fuzz-api-key-0123456789abcdef';
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

/** fc.assert with the suite's seed, and the seed in the failure. */
async function check(property: fc.IAsyncProperty<any>, numRuns: number): Promise<void> {
  const details = await fc.check(property, { seed: SEED, numRuns: runs(numRuns) });
  if (details.failed) {
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(
      `fuzz failure: replay with FUZZ_SEED=${SEED} (path ${details.counterexamplePath}).\n` +
        `counterexample: ${JSON.stringify(details.counterexample)?.slice(0, 2000)}\n${cause}`,
    );
  }
  expect(details.numRuns).toBe(runs(numRuns)); // every run ran (none skipped or interrupted)
}

// What the contract refuses in any string (docs: "Input hygiene"), written here independently of src.
// eslint-disable-next-line no-control-regex -- the point
const REFUSED_IN_STRINGS = /[\u0000-\u0008\u000B-\u001F\u007F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Keys refused at any depth (info.description): those a JavaScript object already has. They matter
// where the document allows any key (profile metadata).
const RESERVED_KEYS = new Set(['prototype', ...Object.getOwnPropertyNames(Object.prototype)]);
function hygienic(value: unknown): boolean {
  if (typeof value === 'string') return !REFUSED_IN_STRINGS.test(value);
  if (Array.isArray(value)) return value.every(hygienic);
  if (value && typeof value === 'object') return Object.entries(value).every(([k, v]) => !RESERVED_KEYS.has(k) && hygienic(k) && hygienic(v));
  return true;
}

// A documented rule JSON Schema cannot say: profile metadata is at most 4 KB as JSON (UTF-8 bytes).
const metadataFits = (payload: unknown): boolean =>
  !(payload && typeof payload === 'object' && 'metadata' in payload) || Buffer.byteLength(JSON.stringify((payload as { metadata: unknown }).metadata) ?? '', 'utf8') <= 4096;

// ---- arbitraries ----------------------------------------------------------------------------

const NASTY_STRINGS = [
  '', ' ', '\n\t', 'a\u0000b', '\u0000', '\u001b[2J', '\u0007', '\u007f', 'a\ud800b', '\udc00', '\u200b\u200b', '\ufeff\u2060', '\u3164', '\u202eevil',
  '\u2028', 'a\uFE0F'.repeat(64), 'a'.repeat(65), 'x'.repeat(4001), '😀'.repeat(4000), '😀'.repeat(4001), 'é'.repeat(33), '__proto__', 'constructor',
  'toString', 'null', 'true', '0', '-1', '1.5', '1e3', '0x10', '2147483648', '9'.repeat(20), '%00', '%ZZ', '../..', '<script>', '{"a":1}', "' OR 1=1 --",
  'ALICE', '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '7b0c6f1e-9d1f-0a8e-9c55-3f1e2d1b0a11', 'urn:uuid:7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11',
];
const EDGE_NUMBERS = [
  0, -0, -1, 1, 1.5, 49, 50, 200, 201, 4000, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 1e10, 999_999_999_999_999, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e21, 1e308, -1e308,
  Number.MIN_VALUE, Number.EPSILON,
];

const nastyString = fc.constantFrom(...NASTY_STRINGS);
/** A small valid number most of the time, an edge one otherwise. */
const seqLike = (valid: fc.Arbitrary<number>) => fc.oneof(valid, fc.constantFrom(...EDGE_NUMBERS));
const anyString = fc.oneof(nastyString, fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ maxLength: 40 }));
const edgeNumber = fc.oneof(fc.constantFrom(...EDGE_NUMBERS), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const anyJson = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: anyJson },
  { weight: 3, arbitrary: anyString },
  { weight: 2, arbitrary: edgeNumber },
  fc.constantFrom(null, true, false, [], {}),
  fc.array(anyString, { maxLength: 3 }),
  fc.dictionary(anyString, anyJson, { maxKeys: 3 }),
);
const extraKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'ref', 'extra', '', 'a\u0000', 'id', 'data', 'event'),
  fc.string({ maxLength: 10 }),
);

/**
 * Strings around a documented maxLength, made of units that count differently: one code point
 * ('a'), a surrogate pair ('😀', one code point, two UTF-16 units), and pairs that some counters
 * take for one character ('a\uFE0F', 'e\u0301': two code points each).
 */
const aroundLength = (max: number) =>
  fc.tuple(fc.constantFrom('a', '😀', 'a\uFE0F', 'e\u0301'), fc.constantFrom(-1, 0, 1)).map(([unit, d]) => unit.repeat(Math.max(0, max + d)));

/**
 * A near-valid variant of a valid object: one field changed, removed, added, a string bent, or a
 * string field (`maxLengths`, from the document) brought to its length limit.
 */
function mutated(valid: Record<string, unknown>, maxLengths: Record<string, number> = {}): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  const key = keys.length ? fc.constantFrom(...keys) : extraKey;
  const limited = Object.entries(maxLengths);
  return fc.oneof(
    ...(limited.length
      ? [{ weight: 3, arbitrary: fc.constantFrom(...limited).chain(([k, max]) => aroundLength(max).map((s) => ({ ...valid, [k]: s }))) }]
      : []),
    { weight: 2, arbitrary: fc.constant(valid) },
    { weight: 4, arbitrary: fc.tuple(key, anyValue).map(([k, v]) => ({ ...valid, [k]: v })) },
    { weight: 2, arbitrary: key.map((k) => Object.fromEntries(Object.entries(valid).filter(([name]) => name !== k))) },
    { weight: 2, arbitrary: fc.tuple(extraKey, anyValue).map(([k, v]) => JSON.parse(JSON.stringify({ ...valid, [k]: v })) as unknown) },
    {
      weight: 3,
      arbitrary: fc.tuple(key, nastyString, fc.boolean()).map(([k, s, before]) => {
        const v = valid[k];
        return { ...valid, [k]: typeof v === 'string' ? (before ? s + v : v + s) : s };
      }),
    },
    { weight: 1, arbitrary: anyJson },
  );
}

/** Percent-encodes the UTF-8 bytes of any string (a lone surrogate becomes U+FFFD, as a browser would send it). */
const encode = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
const rawQueryPiece = fc.constantFrom('%', '%ZZ', '%ED%A0%80', '%00', '%C0%AF', '[]', '[a]=1', '&&', '=', '%E2%80%8B');

/** `maxLength` of each string property of a JSON schema (following one `$ref` into `schemas`). */
function maxLengthsOf(schema: any, schemas: Record<string, any> = {}): Record<string, number> {
  const resolved = schema?.$ref ? schemas[schema.$ref.split('/').pop()] : schema;
  return Object.fromEntries(
    Object.entries<any>(resolved?.properties ?? {}).filter(([name, p]) => typeof p.maxLength === 'number' && name !== 'ref').map(([name, p]) => [name, p.maxLength as number]),
  );
}

// ---- the suite --------------------------------------------------------------------------------

describe.each(DATABASES)(`fuzzing on %s (FUZZ_SEED=${SEED})`, (db) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  // Users of their own for the routes that end or change a session: the others' tokens must stay
  // good, or a 401 would come before the body is judged.
  let forRefresh: TestUser;
  let forLogout: TestUser;
  let forPassword: TestUser;
  let channelId: string;
  let privateId: string;
  let dmId: string;
  let ws: TestClient;
  let wsContract: AsyncApiContract;

  beforeAll(async () => {
    t = await startApp(db, { PARLEY_API_KEYS: API_KEY });
    [alice, bob, forRefresh, forLogout, forPassword] = await Promise.all(['alice', 'bob', 'refresh', 'logout', 'password'].map((p) => registerUser(t, p)));
    channelId = await createChannel(t, alice, [bob]);
    privateId = await createChannel(t, bob, [], 'private');
    dmId = (await t.http().post('/dms').set(alice.auth).send({ username: bob.username }).expect(200)).body.channelId;
    await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text: 'first', clientMsgId: 'seed-1' }).expect(201);
    ({ client: ws } = await TestClient.connect(t.wsUrl, alice.token));
    wsContract = (await AsyncApiContract.forWsUrl(t.wsUrl))!;
  });
  afterAll(async () => {
    await ws?.close();
    await t.close();
  });

  /** After a batch: /health and a WebSocket ping answer within RESPONSIVE_MS. */
  async function expectResponsive(): Promise<void> {
    const started = Date.now();
    await t.http().get('/health').timeout(RESPONSIVE_MS).expect(200);
    const ref = `alive-${randomUUID()}`;
    ws.send('ping', { ref });
    await ws.next('pong', (d) => d.ref === ref, RESPONSIVE_MS);
    expect(Date.now() - started).toBeLessThan(2 * RESPONSIVE_MS);
    expect(ws.closed).toBeNull();
  }

  describe('HTTP', () => {
    const ids = () =>
      fc.oneof(
        { weight: 3, arbitrary: fc.constant(channelId) },
        { weight: 2, arbitrary: fc.constantFrom(privateId, dmId, randomUUID()) },
        { weight: 2, arbitrary: anyString.map(encode).filter((s) => s.length < 4000) },
        { weight: 1, arbitrary: rawQueryPiece },
      );
    const validBodies = (): Record<string, fc.Arbitrary<Record<string, unknown>>> => ({
      'POST /auth/register': fc.nat().map((n) => ({ username: `fz${n}_${randomUUID().slice(0, 6)}`, password: 'password123' })),
      'POST /auth/login': fc.constant({ username: alice.username, password: 'password123' }),
      'POST /auth/refresh': fc.constant({ refreshToken: forRefresh.refreshToken }),
      'POST /users/me/password': fc.constant({ currentPassword: 'password123', newPassword: 'password456' }),
      'POST /channels': fc.nat().map((n) => ({ name: `fz-${n}-${randomUUID().slice(0, 6)}`, visibility: 'public', members: [bob.username] })),
      'POST /dms': fc.constant({ username: bob.username }),
      'POST /channels/{id}/messages': fc.nat().map((n) => ({ text: `hello ${n}`, clientMsgId: `fz-${n}-${randomUUID().slice(0, 8)}` })),
      'POST /channels/{id}/read': seqLike(fc.nat({ max: 3 })).map((seq) => ({ seq })),
      'PATCH /channels/{id}/messages/{seq}': fc.nat().map((n) => ({ text: `edited ${n}` })),
      'PATCH /channels/{id}': fc.record({ topic: fc.nat().map((n) => `topic ${n}`), visibility: fc.constantFrom('public', 'private') }, { requiredKeys: ['topic'] }),
      'POST /channels/{id}/members': fc.constant({ usernames: [bob.username] }),
      'PATCH /channels/{id}/members/{userId}': fc.constantFrom({ role: 'admin' }, { role: 'member' }),
      'PATCH /users/me': fc.nat().map((n) => ({ displayName: `Name ${n}`, avatarUrl: `https://img.example/${n}.png`, metadata: { n } })),
      'PUT /admin/users/{externalId}': fc.nat().map((n) => ({ username: `fzx${n}_${randomUUID().slice(0, 6)}`, displayName: `X ${n}`, metadata: { n } })),
      'POST /admin/users/{externalId}/tokens': fc.nat({ max: 4000 }).map((ttl) => ({ ttl: ttl + 1 })),
      'POST /admin/channels': fc.nat().map((n) => ({ name: `fza-${n}-${randomUUID().slice(0, 6)}`, visibility: 'private', members: [] })),
      'POST /admin/channels/{id}/members': fc.constant({ externalIds: ['nobody-at-all'] }),
      'POST /admin/channels/{id}/messages': fc.nat().map((n) => ({ text: `notice ${n}`, clientMsgId: `fza-${n}-${randomUUID().slice(0, 8)}` })),
    });
    // Routes that end or change the caller's session get a user of their own.
    // Bob, not the owner, fuzzes the archive: alice's channel must stay writable for the routes after it.
    const tokenFor = (route: string) =>
      route === 'POST /auth/logout' ? forLogout : route === 'POST /users/me/password' ? forPassword : route === 'POST /channels/{id}/archive' ? bob : alice;
    const contentType = fc.oneof(
      { weight: 8, arbitrary: fc.constant('application/json') },
      fc.constantFrom('application/json; charset=utf-8', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'application/merge-patch+json', 'multipart/form-data; boundary=x'),
    );

    it('no body, query or path parameter of any route gets a 500 or an answer off the document; bodies are checked exactly', async () => {
      const bodies = validBodies();
      for (const { method, template, op } of t.contract.operations()) {
        const route = `${method.toUpperCase()} ${template}`;
        const user = tokenFor(route);
        const queryParams = ((op.parameters as { name: string; in: string }[] | undefined) ?? []).filter((p) => p.in === 'query').map((p) => p.name);
        const lengths = maxLengthsOf((op as any).requestBody?.content?.['application/json']?.schema, (t.contract.document as any).components.schemas);
        const body = bodies[route] ? bodies[route].chain((valid) => mutated(valid, lengths)) : anyJson;
        // Kept under 8 KB: Node's HTTP parser answers longer request heads with a bodiless 431 (docs: info.description).
        const query = fc
          .array(
            fc.tuple(
              fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...queryParams, 'extra') }, anyString),
              fc.oneof(anyString.map(encode), { weight: 3, arbitrary: seqLike(fc.nat({ max: 60 })).map(String) }, edgeNumber.map(String), rawQueryPiece),
            ),
            { maxLength: 3 },
          )
          .filter((pairs) => pairs.reduce((n, [k, v]) => n + encode(k).length + v.length, 0) < 8000);
        const property = fc.asyncProperty(body, query, ids(), contentType, async (payload, pairs, id, type) => {
          // A good path names alice's first message (and a good emoji); a fuzzed one fuzzes every parameter.
          const path = (id === channelId ? template.replace('{seq}', '1').replace('{emoji}', encodeURIComponent('👍')) : template).replace(/\{[^}]+\}/g, id);
          const qs = pairs.map(([k, v]) => `${encode(k)}=${v}`).join('&');
          const res = await (t.http() as any)[method](`${path}${qs ? `?${qs}` : ''}`)
            .set('Authorization', template.startsWith('/admin/') ? `ApiKey ${API_KEY}` : `Bearer ${user.token}`)
            .set('Content-Type', type)
            .send(type.startsWith('application/json') ? JSON.stringify(payload) : String(JSON.stringify(payload)));
          expect([route, res.status < 500]).toEqual([route, true]);
          // The oracle: a JSON body to a good path is refused exactly when the document refuses it
          // (no route with a body reads a query).
          if (type === 'application/json' && (id === channelId || !template.includes('{'))) {
            const allowed = t.contract.allowsRequestBody(method, template, payload);
            if (allowed === false) expect([route, payload, res.status]).toEqual([route, payload, 400]);
            if (allowed === true && hygienic(payload) && metadataFits(payload) && res.status === 400) {
              throw new ContractViolation(`${route}: a body the document allows was refused: ${JSON.stringify(payload)} → ${JSON.stringify(res.body)}`);
            }
          }
        });
        await check(property, bodies[route] ? 150 : template.includes('{') ? 80 : 40);
        await expectResponsive();
        // The leave route may have taken alice out of her channel: the next routes want her in it.
        await t.http().post(`/channels/${channelId}/join`).set(alice.auth).expect(200);
      }
    });

    it('any Authorization header is a 401 or a success, never a 500', async () => {
      // eslint-disable-next-line no-control-regex -- what an HTTP client can put in a header
      const header = fc.oneof(anyString.filter((s) => !/[\r\n\u0000-\u001f\u007f-\uffff]/.test(s)), fc.constantFrom('Bearer', 'Bearer ', 'bearer x', `Bearer ${alice.token}x`, `Bearer ${alice.token.split('.').slice(0, 2).join('.')}.`, 'Basic YTpi'));
      await check(
        fc.asyncProperty(header, async (value) => {
          const res = await t.http().get('/users/me').set('Authorization', value);
          expect([200, 401]).toContain(res.status);
        }),
        100,
      );
      await expectResponsive();
    });
  });

  describe('WebSocket', () => {
    const validData = (): Record<string, fc.Arbitrary<Record<string, unknown>>> => ({
      'message.send': fc.nat().map((n) => ({ channelId, text: `hi ${n}`, clientMsgId: `ws-${n}-${randomUUID().slice(0, 8)}` })),
      'channel.join': fc.oneof(fc.nat().map((n) => ({ name: `fz-ws-${n}` })), fc.constant({ channelId })),
      'channel.leave': fc.constant({ channelId: dmId }), // refused (a DM), so alice stays in her channels
      read: seqLike(fc.nat({ max: 5 })).map((seq) => ({ channelId, seq })),
      typing: fc.constant({ channelId }),
      sync: fc
        .tuple(seqLike(fc.nat({ max: 5 })), fc.constantFrom(channelId, privateId, dmId, randomUUID()))
        .map(([seq, id]) => ({ channels: { [channelId]: 0, [id]: seq } })),
      history: fc
        .record({ beforeSeq: seqLike(fc.integer({ min: 1, max: 5 })), limit: seqLike(fc.integer({ min: 1, max: 200 })) }, { requiredKeys: [] })
        .map((page) => ({ channelId, ...page })),
      ping: fc.constant({}),
      'message.edit': fc.tuple(fc.nat(), seqLike(fc.integer({ min: 1, max: 3 }))).map(([n, seq]) => ({ channelId, seq, text: `edit ${n}` })),
      'message.delete': seqLike(fc.integer({ min: 2, max: 9 })).map((seq) => ({ channelId, seq })),
      'reaction.add': fc.tuple(seqLike(fc.integer({ min: 1, max: 3 })), fc.constantFrom('👍', ':tada:', '🇫🇷', '👍🏽')).map(([seq, emoji]) => ({ channelId, seq, emoji })),
      'reaction.remove': fc.tuple(seqLike(fc.integer({ min: 1, max: 3 })), fc.constantFrom('👍', ':tada:')).map(([seq, emoji]) => ({ channelId, seq, emoji })),
    });
    let counter = 0;

    /** Sends a frame, then a ping: the ping's pong bounds the wait, and proves the socket alive. */
    async function roundTrip(raw: string): Promise<void> {
      ws.sendRaw(raw);
      const ref = `after-${++counter}`;
      ws.send('ping', { ref });
      await ws.next('pong', (d) => d.ref === ref, 2 * RESPONSIVE_MS);
      expect(ws.closed).toBeNull();
    }

    /** The answers to a ref so far; with `wait`, waits a little for a first one. */
    async function answersTo(ref: string, wait: boolean): Promise<Frame[]> {
      for (let i = 0; ; i++) {
        const found = ws.log.filter((f) => f.data?.ref === ref && f.event !== 'pong');
        if (found.length > 0 || !wait || i >= 20) return found;
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    it('no data of any event gets an internal error, closes the socket, or is judged differently from the document', async () => {
      const events = [...Object.keys(validData()), 'nope', 'message.sent', ''];
      const valid = validData();
      const messages = (wsContract.document as any).channels.ws.messages;
      for (const event of events) {
        const lengths = maxLengthsOf(messages[`client_${event.replace(/\./g, '_')}`]?.payload.properties.data);
        const data = valid[event] ? valid[event].chain((v) => mutated(v, lengths)) : anyJson;
        const property = fc.asyncProperty(data, async (payload) => {
          const ref = `fz-${++counter}`;
          const isObject = payload !== null && typeof payload === 'object' && !Array.isArray(payload);
          const sent = isObject ? { ...(payload as object), ref } : payload;
          const frame = { event, data: sent };
          await roundTrip(JSON.stringify(frame));
          if (!isObject) return;
          // A refusal comes before the pong of the ping sent after it (both take the same path);
          // a frame the document refuses is waited for a little all the same.
          const allowed = wsContract.allowsClientFrame(frame);
          const answers = await answersTo(ref, !allowed);
          expect(answers.filter((f) => f.event === 'error' && f.data.code === 'internal')).toEqual([]);
          const refused = answers.find((f) => f.event === 'error' && ['invalid_payload', 'bad_json', 'unknown_event'].includes(f.data.code));
          if (!allowed) expect([event, payload, refused?.data.code ?? answers]).toEqual([event, payload, expect.any(String)]);
          else if (refused && hygienic(payload) && !(event === 'message.send' && String((payload as any).to).toLowerCase() === alice.username.toLowerCase())) {
            throw new ContractViolation(`${event}: data the document allows was refused: ${JSON.stringify(payload)} → ${JSON.stringify(refused.data)}`);
          }
        });
        await check(property, valid[event] ? 150 : 40);
        await expectResponsive();
      }
      expect(ws.log.filter((f) => f.event === 'error' && f.data.code === 'internal')).toEqual([]);
    });

    it('no raw frame (not JSON, not an envelope, too deep, binary) gets an internal error or closes the socket', async () => {
      const raw = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        anyJson.map((v) => JSON.stringify(v)),
        fc.tuple(fc.constantFrom('message.send', 'ping', 'sync'), anyValue, anyValue).map(([event, data, extra]) => JSON.stringify({ event, data, extra })),
        fc.tuple(anyValue, anyValue).map(([event, data]) => JSON.stringify({ event, data })),
        fc.integer({ min: 30, max: 300 }).map((depth) => `{"event":"ping","data":{"ref":"deep","x":${'['.repeat(depth)}${']'.repeat(depth)}}}`),
        fc.constantFrom('', 'null', '[]', '{}', '{"event":', '{"event":null}', '{"event":"ping","data":null}', '\u0000', '{"event":"ping","data":{"ref":"\\ud800"}}'),
      );
      await check(
        fc.asyncProperty(raw, fc.boolean(), async (text, binary) => {
          if (binary) {
            ws.sendRaw(Buffer.from(text));
            const ref = `after-${++counter}`;
            ws.send('ping', { ref });
            await ws.next('pong', (d) => d.ref === ref, 2 * RESPONSIVE_MS);
          } else await roundTrip(text);
        }),
        300,
      );
      await expectResponsive();
      expect(ws.log.filter((f) => f.event === 'error' && f.data.code === 'internal')).toEqual([]);
    });
  });

  it('stored nothing the contract refuses', async () => {
    const db = t.app.get(DataSource);
    const visible = /[^\s\p{Cc}\p{Cf}\p{Mn}\p{Me}\p{Zs}\u115F\u1160\u2800\u3164\uFFA0]/u;
    // Tombstones (deleted messages, protocol v1.1) have an empty text on purpose.
    const messages: { text: string; client_msg_id: string }[] = await db.query('SELECT text, client_msg_id FROM messages WHERE deleted_at IS NULL');
    expect(messages.length).toBeGreaterThan(10);
    const badMessages = messages.filter(
      (m) => !hygienic(m.text) || !visible.test(m.text) || [...m.text].length > 4000 || !hygienic(m.client_msg_id) || [...m.client_msg_id].length > 64 || m.client_msg_id === '',
    );
    expect(badMessages).toEqual([]);
    const users: { username: string }[] = await db.query('SELECT username FROM users');
    expect(users.filter((u) => !/^[A-Za-z0-9_.-]{3,32}$/.test(u.username))).toEqual([]);
    const channels: { name: string | null; kind: string }[] = await db.query('SELECT name, kind FROM channels');
    expect(channels.filter((c) => c.kind === 'channel' && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(c.name ?? ''))).toEqual([]);
  });
});
