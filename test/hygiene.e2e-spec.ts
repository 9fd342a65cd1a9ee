import { createChannel, DATABASES, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/**
 * Text hygiene: what a client may put in a string. Each refused case is one the audit found
 * stored (or, on PostgreSQL, answered 500 and failing its whole batch).
 */
describe.each(DATABASES)('text hygiene on %s', (db) => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let channelId: string;

  beforeAll(async () => {
    t = await startApp(db);
    [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
    channelId = await createChannel(t, alice, [bob]);
  });
  afterAll(() => t.close());

  const send = (text: string, clientMsgId: string) => t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text, clientMsgId });

  it.each([
    ['a NUL', 'hi\u0000there'],
    ['an ESC (terminal escape)', 'hi \u001b[2J'],
    ['a BEL', 'ding\u0007'],
    ['a DEL', 'x\u007f'],
    ['a lone high surrogate', 'a\ud800b'],
    ['a lone low surrogate', '\udc00'],
  ])('refuses a message with %s: 400 invalid_payload naming the field, nothing stored', async (_what, text) => {
    const res = await send(text, `bad-${Math.random()}`).expect(400);
    expect(res.body).toMatchObject({ code: 'invalid_payload', details: { fields: { text: [expect.any(String)] } } });
    const history = await t.http().get(`/channels/${channelId}/messages`).set(alice.auth).expect(200);
    expect(history.body.messages.map((m: { text: string }) => m.text)).not.toContain(text);
  });

  it.each([
    ['only zero-width spaces', '\u200b\u200b'],
    ['only a BOM and a word joiner', '\ufeff\u2060'],
    ['only white space of all kinds', ' \u00a0\u3000\n\t'],
    ['only a Hangul filler', '\u3164'],
  ])('refuses text of %s as not visible', async (_what, text) => {
    const res = await send(text, `blank-${Math.random()}`).expect(400);
    expect(res.body.details.fields.text[0]).toMatch(/visible/);
  });

  it('keeps newlines, tabs, emoji and combining accents exactly', async () => {
    const text = 'line 1\n\tline 2 👩‍👩‍👧 e\u0301';
    const res = await send(text, 'fine-1').expect(201);
    expect(res.body.message.text).toBe(text);
    const history = await t.http().get(`/channels/${channelId}/messages?after=${res.body.message.seq - 1}`).set(alice.auth).expect(200);
    expect(history.body.messages[0].text).toBe(text);
  });

  it('refuses NUL anywhere: in a clientMsgId, a member list, a search query, an object key', async () => {
    expect((await send('ok', 'k\u0000').expect(400)).body.details.fields).toHaveProperty('clientMsgId');
    const create = await t.http().post('/channels').set(alice.auth).send({ name: 'clean', visibility: 'public', members: ['bob', 'x\u0000'] }).expect(400);
    expect(create.body.details.fields).toHaveProperty(['members.1']);
    await t.http().get('/users?query=a%00').set(alice.auth).expect(400);
    await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text: 'ok', clientMsgId: 'k', 'x\u0000': 1 }).expect(400);
  });

  it('answers a bad frame over WebSocket with invalid_payload and keeps the connection, and the next send works', async () => {
    const { client } = await TestClient.connect(t.wsUrl, alice.token);
    client.send('message.send', { channelId, text: 'nul\u0000', clientMsgId: 'ws-bad', ref: 'r1' });
    expect(await client.next('error')).toMatchObject({ code: 'invalid_payload', ref: 'r1' });
    client.send('message.send', { channelId, text: '\u200b', clientMsgId: 'ws-blank', ref: 'r2' });
    expect(await client.next('error')).toMatchObject({ code: 'invalid_payload', ref: 'r2' });
    client.send('message.send', { channelId, text: 'clean', clientMsgId: 'ws-good' });
    expect((await client.next('message.ack')).message.text).toBe('clean');
    await client.close();
  });
});
