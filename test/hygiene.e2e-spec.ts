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
  // What test/fuzz.e2e-spec.ts found, one test each.

  it('counts lengths in characters (code points): 64 "a\uFE0F" is 128, refused, not a 500 on PostgreSQL', async () => {
    const res = await send('hi', 'a\uFE0F'.repeat(64)).expect(400);
    expect(res.body.details.fields).toHaveProperty('clientMsgId');
    await send('hi', '😀'.repeat(64)).expect(201); // 64 characters, 128 UTF-16 units: fine
    await send('😀'.repeat(4000), 'emoji-4000').expect(201);
    await send('😀'.repeat(4001), 'emoji-4001').expect(400);
    await send('e\u0301'.repeat(2001), 'combining').expect(400); // 4002 characters
  });

  it('refuses a seq cursor past 2^31 - 1 (PostgreSQL integer): 400, and invalid_payload over WebSocket, not a 500', async () => {
    for (const q of ['before=2147483648', 'after=2147483648', 'after=999999999999999']) {
      expect((await t.http().get(`/channels/${channelId}/messages?${q}`).set(alice.auth).expect(400)).body.code).toBe('invalid_payload');
    }
    await t.http().get(`/channels/${channelId}/messages?after=2147483647`).set(alice.auth).expect(200);
    await t.http().post(`/channels/${channelId}/read`).set(alice.auth).send({ seq: 2 ** 31 }).expect(400);
    const { client } = await TestClient.connect(t.wsUrl, alice.token);
    client.send('history', { channelId, beforeSeq: 2 ** 31, ref: 'h' });
    expect(await client.next('error', (d) => d.ref === 'h')).toMatchObject({ code: 'invalid_payload' });
    client.send('sync', { channels: { [channelId]: 2 ** 31 }, ref: 's' });
    expect(await client.next('error', (d) => d.ref === 's')).toMatchObject({ code: 'invalid_payload' });
    client.send('sync', { channels: { [channelId]: 2 ** 31 - 1 }, ref: 'ok' });
    expect(await client.next('sync.result', (d) => d.ref === 'ok')).toMatchObject({ messages: [] });
    await client.close();
  });

  it.each(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])('refuses a "%s" key, which the pipeline used to drop unseen', async (key) => {
    const body = JSON.parse(`{"text":"ok","clientMsgId":"proto-${key}","${key}":{"x":1}}`);
    const res = await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send(body).expect(400);
    expect(res.body.details.fields).toHaveProperty([key]);
    const { client } = await TestClient.connect(t.wsUrl, alice.token);
    client.sendRaw(`{"event":"history","data":{"channelId":"${channelId}","${key}":0,"ref":"k"}}`);
    expect(await client.next('error', (d) => d.ref === 'k')).toMatchObject({ code: 'invalid_payload' });
    await client.close();
  });

  it('refuses null for an optional field (the documents allow it to be left out, not null)', async () => {
    await t.http().post('/channels').set(alice.auth).send({ name: 'with-null-members', visibility: 'public', members: null }).expect(400);
    const { client } = await TestClient.connect(t.wsUrl, alice.token);
    client.send('history', { channelId, beforeSeq: null, ref: 'n' });
    expect(await client.next('error', (d) => d.ref === 'n')).toMatchObject({ code: 'invalid_payload', details: { fields: { beforeSeq: expect.any(Array) } } });
    await client.close();
  });

  it('takes as a UUID exactly what the documents say: no urn: prefix, no version 0', async () => {
    const { client } = await TestClient.connect(t.wsUrl, alice.token);
    for (const id of [`urn:uuid:${channelId}`, '7b0c6f1e-9d1f-0a8e-9c55-3f1e2d1b0a11']) {
      client.send('typing', { channelId: id, ref: id });
      expect(await client.next('error', (d) => d.ref === id)).toMatchObject({ code: 'invalid_payload' });
      client.send('sync', { channels: { [id]: 0 }, ref: `s-${id}` });
      expect(await client.next('error', (d) => d.ref === `s-${id}`)).toMatchObject({ code: 'invalid_payload' });
    }
    await t.http().get('/channels/7b0c6f1e-9d1f-0a8e-9c55-3f1e2d1b0a11/messages').set(alice.auth).expect(400);
    await client.close();
  });
});
