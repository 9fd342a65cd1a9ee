import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createChannel, DATABASES, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

const nestedArrays = (depth: number, inner = '0') => '['.repeat(depth) + inner + ']'.repeat(depth);
const nestedObjects = (depth: number) => '{"a":'.repeat(depth) + '0' + '}'.repeat(depth);

/**
 * Whether `run` made JSON.parse read a text at least `length` long: a payload refused by the
 * scan of the raw bytes never reaches JSON.parse (nor the validation behind it, which took 57 to
 * 120 ms on such payloads). Checked this way, not by timing: a timed assertion fails on a busy
 * machine (it did, in CI) and proves less.
 */
async function parsedTextOf(length: number, run: () => Promise<unknown>): Promise<boolean> {
  const parse = jest.spyOn(JSON, 'parse');
  try {
    await run();
    return parse.mock.calls.some(([text]) => typeof text === 'string' && text.length >= length);
  } finally {
    parse.mockRestore();
  }
}

/**
 * The audit's attack: deeply nested JSON cost tens of milliseconds of CPU in validation, then
 * overflowed the stack in class-transformer (500, and an error-level stack trace in the log).
 * Nesting deeper than 32 levels is refused before anything parses it, on both transports.
 */
describe.each(DATABASES)('deeply nested JSON on %s', (db) => {
  let t: TestApp;
  let alice: TestUser;
  let errorLog: ReturnType<typeof jest.spyOn>;

  beforeAll(async () => {
    t = await startApp(db);
    alice = await registerUser(t, 'alice');
  });
  afterAll(() => t.close());
  beforeEach(() => {
    errorLog = jest.spyOn(Logger.prototype, 'error');
  });
  afterEach(() => {
    const logged = errorLog.mock.calls;
    errorLog.mockRestore();
    expect(logged).toEqual([]); // nothing at error level: a refused payload is not our failure
  });

  const postJson = (path: string, body: string) => t.http().post(path).set('Content-Type', 'application/json').send(body);

  it('answers a 4 KB body of 2,000 nested arrays to /auth/login with 400 invalid_payload, at once', async () => {
    const body = `{"username":"alice","password":${nestedArrays(2000)}}`;
    const res = await postJson('/auth/login', body).expect(400);
    expect(res.body).toEqual({ statusCode: 400, code: 'invalid_payload', message: 'JSON nested deeper than 32 levels' });
    // Refused by a scan of the raw bytes, before any parsing (the 60-120 ms validation it used to take).
    expect(await parsedTextOf(body.length, () => postJson('/auth/login', body).expect(400))).toBe(false);
    // The check is not vacuous: a body as long but shallow is parsed.
    const shallow = `{"username":"alice","password":"${'x'.repeat(body.length)}"}`;
    expect(await parsedTextOf(body.length, () => postJson('/auth/login', shallow))).toBe(true);
  });

  it('answers 90 KB of 45,000 nested arrays with 400, not a stack overflow', async () => {
    const res = await postJson('/auth/login', nestedArrays(45_000)).expect(400);
    expect(res.body.code).toBe('invalid_payload');
  });

  it('refuses nested objects the same way, and a normal login right after works', async () => {
    const res = await postJson('/auth/register', nestedObjects(100)).expect(400);
    expect(res.body).toMatchObject({ code: 'invalid_payload', message: 'JSON nested deeper than 32 levels' });
    await t.http().post('/auth/login').send({ username: alice.username, password: 'password123' }).expect(200);
  });

  it('reads no URL-encoded bodies at all (a cross-site form cannot register or log in), nested or not', async () => {
    for (const form of [`username${'[a]'.repeat(40)}=x&password=password123`, `username=${alice.username}&password=password123`]) {
      const res = await t.http().post('/auth/login').set('Content-Type', 'application/x-www-form-urlencoded').send(form).expect(400);
      expect(res.body).toMatchObject({ code: 'invalid_payload' });
    }
    await t.http().post('/auth/register').set('Content-Type', 'application/x-www-form-urlencoded').send('username=formuser&password=password123').expect(400);
  });

  it('lets 32 levels through to validation, which words the error per field', async () => {
    // The body object is level 1: 31 more arrays make 32.
    const res = await postJson('/auth/login', `{"username":${nestedArrays(31)},"password":"password123"}`).expect(400);
    expect(res.body).toMatchObject({ code: 'invalid_payload', details: { fields: { username: expect.any(Array) } } });
  });

  it('does not count brackets inside strings', async () => {
    const channelId = await createChannel(t, alice);
    const text = `a "quoted" \\ text ${'[{'.repeat(500)}`;
    const res = await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text, clientMsgId: 'brackets' }).expect(201);
    expect(res.body.message.text).toBe(text);
  });

  it('answers a 60 KB nested WebSocket frame with a bad_json error frame and keeps the connection', async () => {
    const { client } = await TestClient.connect(t.wsUrl, alice.token);
    const frame = `{"event":"ping","data":{"ref":"deep","x":${nestedArrays(30_000)}}}`;
    client.sendRaw(frame);
    expect(await client.next('error')).toEqual({ code: 'bad_json', message: 'JSON nested deeper than 32 levels', ref: 'deep' });
    // Refused before JSON.parse (it cost 57 ms of validation before).
    expect(await parsedTextOf(frame.length, () => (client.sendRaw(frame), client.next('error')))).toBe(false);
    client.send('ping', { ref: 'after' });
    expect(await client.next('pong')).toMatchObject({ ref: 'after' });
    expect(client.closed).toBeNull();
    await client.close();
  });
});
