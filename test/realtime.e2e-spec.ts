import jwt from 'jsonwebtoken';
import { createChannel, DATABASES, registerUser, suiteApp, TestApp, TestUser } from './helpers/test-app.js';
import { HandshakeRefused, TestClient } from './helpers/ws-client.js';

const SECRET = 'test-secret-0123456789abcdef';

describe.each(DATABASES)('WebSocket protocol v1 on %s', (db) => {
  const suite = suiteApp(db);
  let t: TestApp;
  beforeAll(() => {
    t = suite.t;
  });

  async function connect(u: TestUser, opts: { query?: boolean } = {}) {
    const { client, ready } = await TestClient.connect(t.wsUrl, u.token, opts);
    suite.track(client);
    return { client, ready };
  }
  const sendHttp = (u: TestUser, channelId: string, text: string, clientMsgId: string) =>
    t.http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text, clientMsgId }).expect(201);

  describe('handshake', () => {
    it.each([
      ['no token', null],
      ['a forged token', jwt.sign({ sub: 'x', username: 'x' }, 'another-secret-0123456789')],
      ['an expired token', jwt.sign({ sub: 'x', username: 'x', exp: Math.floor(Date.now() / 1000) - 5 }, SECRET)],
      ['an alg:none token', jwt.sign({ sub: 'x', username: 'x' }, '', { algorithm: 'none' })],
    ])('refuses %s with HTTP 401 before the upgrade', async (_, token) => {
      await expect(TestClient.open(t.wsUrl, token)).rejects.toEqual(new HandshakeRefused(401));
    });

    it('accepts the token as ?token= for browsers and sends session.ready first', async () => {
      const alice = await registerUser(t, 'alice');
      const channelId = await createChannel(t, alice);
      const { client, ready } = await connect(alice, { query: true });
      expect(client.frames).toEqual([]);
      expect(ready).toMatchObject({
        user: { id: alice.id, username: alice.username },
        sessionId: expect.any(String),
        heartbeatIntervalMs: 30000,
        conversations: [expect.objectContaining({ channelId, kind: 'channel', unreadCount: 0 })],
      });
    });
  });

  describe('messages', () => {
    it('acks the sender, then delivers message.new to every connection of every member, sender devices included', async () => {
      const [alice, bob, carol] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob'), registerUser(t, 'carol')]);
      const channelId = await createChannel(t, alice, [bob]);
      const a1 = (await connect(alice)).client;
      const a2 = (await connect(alice)).client;
      const b1 = (await connect(bob)).client;
      const c1 = (await connect(carol)).client;
      a1.send('message.send', { channelId, text: 'hi all', clientMsgId: 'w-1', ref: 'r-1' });
      const ack = await a1.next('message.ack');
      expect(ack).toMatchObject({ clientMsgId: 'w-1', duplicate: false, ref: 'r-1', message: { seq: 1, text: 'hi all', sender: { id: alice.id } } });
      for (const c of [a1, a2, b1]) expect((await c.next('message.new')).message).toEqual(ack.message);
      await c1.expectNone('message.new');
    });

    it('sends message.ack before message.new on the sending connection', async () => {
      const alice = await registerUser(t, 'alice');
      const channelId = await createChannel(t, alice);
      const a = (await connect(alice)).client;
      a.send('message.send', { channelId, text: 'order', clientMsgId: 'ord-1' });
      await a.next('message.new');
      expect(a.log.map((f) => f.event).filter((e) => e.startsWith('message.'))).toEqual(['message.ack', 'message.new']);
    });

    it('gives personalized conversation.update frames with exact unread counts', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, alice, [bob]);
      const a = (await connect(alice)).client;
      const b = (await connect(bob)).client;
      for (let i = 1; i <= 3; i++) {
        a.send('message.send', { channelId, text: `m${i}`, clientMsgId: `cu-${i}` });
        await a.next('message.ack');
      }
      const bobs = await b.next('conversation.update', (d) => d.conversation.headSeq === 3);
      expect(bobs.conversation).toMatchObject({ channelId, headSeq: 3, lastReadSeq: 0, unreadCount: 3, lastMessage: { text: 'm3' } });
      const alices = await a.next('conversation.update', (d) => d.conversation.headSeq === 3);
      expect(alices.conversation).toMatchObject({ headSeq: 3, lastReadSeq: 3, unreadCount: 0 });
    });

    it('answers a retry with duplicate: true and the original, with no second message.new', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, alice, [bob]);
      const a = (await connect(alice)).client;
      const b = (await connect(bob)).client;
      a.send('message.send', { channelId, text: 'once', clientMsgId: 'dup-1' });
      const first = await a.next('message.ack');
      await b.next('message.new');
      a.send('message.send', { channelId, text: 'once again', clientMsgId: 'dup-1' });
      const retry = await a.next('message.ack');
      expect(retry).toMatchObject({ duplicate: true, message: first.message });
      await b.expectNone('message.new');
      // An HTTP retry of the same clientMsgId is a duplicate too.
      const http = await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text: 'x', clientMsgId: 'dup-1' }).expect(200);
      expect(http.body.message.id).toBe(first.message.id);
    });

    it('delivers messages sent over HTTP to WebSocket members', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, alice, [bob]);
      const b = (await connect(bob)).client;
      await sendHttp(alice, channelId, 'from a bot', 'http-1');
      expect((await b.next('message.new')).message).toMatchObject({ text: 'from a bot', seq: 1 });
    });

    it('creates a DM on the first message to a username, showing up live on both sides', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const a = (await connect(alice)).client;
      const b = (await connect(bob)).client;
      a.send('message.send', { to: bob.username, text: 'hello bob', clientMsgId: 'dm-1' });
      const ack = await a.next('message.ack');
      const channelId = ack.message.channelId;
      const bobSees = await b.next('conversation.update', (d) => d.conversation.channelId === channelId);
      // A request for bob until he answers: no presence through it yet.
      expect(bobSees.conversation).toMatchObject({ kind: 'dm', name: alice.username, accepted: false, peer: { id: alice.id, status: 'offline' } });
      expect((await b.next('message.new')).message).toMatchObject({ channelId, text: 'hello bob' });
      const aliceSees = await a.next('conversation.update', (d) => d.conversation.channelId === channelId);
      expect(aliceSees.conversation).toMatchObject({ kind: 'dm', name: bob.username, accepted: true, peer: { id: bob.id, status: 'offline' } });
      // The second message to the same user goes to the same DM, and accepts it: both see each other online.
      b.send('message.send', { to: alice.username, text: 'hi alice', clientMsgId: 'dm-2' });
      expect((await b.next('message.ack')).message).toMatchObject({ channelId, seq: 2 });
      expect((await b.next('conversation.update', (d) => d.conversation.channelId === channelId && d.conversation.accepted)).conversation)
        .toMatchObject({ peer: { id: alice.id, status: 'online' } });
      expect((await a.next('conversation.update', (d) => d.conversation.peer?.status === 'online')).conversation).toMatchObject({ channelId, peer: { id: bob.id } });
    });

    it('keeps seq order on every connection for a burst of 200 pipelined sends', async () => {
      const [alice, bob, carol] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob'), registerUser(t, 'carol')]);
      const channelId = await createChannel(t, alice, [bob, carol]);
      const a = (await connect(alice)).client;
      const receivers = [(await connect(bob)).client, (await connect(carol)).client, (await connect(carol)).client];
      for (let i = 0; i < 200; i++) a.send('message.send', { channelId, text: `burst ${i}`, clientMsgId: `burst-${i}` });
      for (const r of receivers) await r.next('message.new', (d) => d.message.seq === 200, 20000);
      await a.next('message.ack', (d) => d.clientMsgId === 'burst-199');
      const acks = a.log.filter((f) => f.event === 'message.ack');
      expect(acks).toHaveLength(200);
      expect(new Set(acks.map((f) => f.data.message.seq)).size).toBe(200);
      for (const r of receivers) {
        const seqs = r.log.filter((f) => f.event === 'message.new').map((f) => f.data.message.seq);
        expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      }
    });
  });

  describe('channels', () => {
    it('joins by name (creating the channel), tells the other members, and leaves', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const a = (await connect(alice)).client;
      const b = (await connect(bob)).client;
      const name = `room-${Date.now().toString(36)}`;
      a.send('channel.join', { name, ref: 'j1' });
      const joined = await a.next('channel.joined');
      expect(joined).toMatchObject({ ref: 'j1', conversation: { kind: 'channel', name, headSeq: 0 } });
      const channelId = joined.conversation.channelId;
      b.send('channel.join', { name: name.toUpperCase() });
      expect((await b.next('channel.joined')).conversation.channelId).toBe(channelId);
      expect(await a.next('member.joined')).toEqual({ channelId, user: { id: bob.id, username: bob.username } });
      b.send('channel.leave', { channelId, ref: 'l1' });
      expect(await b.next('channel.left')).toEqual({ channelId, ref: 'l1' });
      expect(await a.next('member.left')).toEqual({ channelId, user: { id: bob.id, username: bob.username } });
      // Gone: no more messages for bob.
      a.send('message.send', { channelId, text: 'after leave', clientMsgId: 'al-1' });
      await a.next('message.ack');
      await b.expectNone('message.new');
    });

    it("tells the joiner's other devices about the new conversation", async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, alice);
      const b1 = (await connect(bob)).client;
      const b2 = (await connect(bob)).client;
      b1.send('channel.join', { channelId });
      await b1.next('channel.joined');
      expect((await b2.next('conversation.update')).conversation.channelId).toBe(channelId);
      await b1.expectNone('conversation.update', 200);
    });
  });

  describe('read markers, typing, presence', () => {
    it('moves the read marker and updates the reader on every device', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, alice, [bob]);
      for (let i = 1; i <= 4; i++) await sendHttp(alice, channelId, `r${i}`, `read-${i}`);
      await new Promise((r) => setTimeout(r, t.config.conversationUpdateIntervalMs + 50)); // let the folded update pass
      const b1 = (await connect(bob)).client;
      const b2 = (await connect(bob)).client;
      b1.send('read', { channelId, seq: 3, ref: 'rd' });
      expect(await b1.next('conversation.update', (d) => d.ref === 'rd')).toMatchObject({ conversation: { lastReadSeq: 3, unreadCount: 1 } });
      expect((await b2.next('conversation.update')).conversation).toMatchObject({ lastReadSeq: 3, unreadCount: 1 });
      b1.send('read', { channelId, seq: 2 });
      expect((await b1.next('conversation.update')).conversation).toMatchObject({ lastReadSeq: 3 });
      await b2.expectNone('conversation.update', 200);
    });

    it('sends typing to the other members only, throttled', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, alice, [bob]);
      const a1 = (await connect(alice)).client;
      const a2 = (await connect(alice)).client;
      const b = (await connect(bob)).client;
      a1.send('typing', { channelId });
      expect(await b.next('typing')).toEqual({ channelId, user: { id: alice.id, username: alice.username } });
      a1.send('typing', { channelId });
      await b.expectNone('typing', 300);
      await a1.expectNone('typing', 0);
      await a2.expectNone('typing', 0);
    });

    it('announces online on the first connection and offline after the last one closes', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const dm = await t.http().post('/dms').set(alice.auth).send({ username: bob.username }).expect(200);
      await t.http().post(`/channels/${dm.body.channelId}/accept`).set(bob.auth).expect(200); // presence needs both sides
      const a = (await connect(alice)).client;
      const b1 = (await connect(bob)).client;
      expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });
      const b2 = (await connect(bob)).client;
      await a.expectNone('presence.update', 200);
      await b1.close();
      await a.expectNone('presence.update', 200);
      await b2.close();
      const off = await a.next('presence.update');
      expect(off).toMatchObject({ user: { id: bob.id }, status: 'offline', lastSeenAt: expect.any(String) });
      const me = await t.http().get('/users/me').set(bob.auth).expect(200);
      expect(me.body.lastSeenAt).not.toBeNull();
    });
  });

  describe('resume and history', () => {
    it('returns exactly the missed messages after a disconnect, paged by hasMore', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const channelId = await createChannel(t, alice, [bob]);
      const b = (await connect(bob)).client;
      await sendHttp(alice, channelId, 'seen', 'rs-0');
      const lastSeen = (await b.next('message.new')).message.seq;
      await b.close();
      for (let i = 1; i <= 230; i++) await sendHttp(alice, channelId, `missed ${i}`, `rs-${i}`);
      const { client: back } = await connect(bob);
      suite.track(back);
      back.send('sync', { channels: { [channelId]: lastSeen }, ref: 's1' });
      const page1 = await back.next('sync.result');
      expect(page1).toMatchObject({ channelId, headSeq: 231, hasMore: true, ref: 's1' });
      expect(page1.messages).toHaveLength(200);
      back.send('sync', { channels: { [channelId]: page1.messages.at(-1).seq } });
      const page2 = await back.next('sync.result');
      expect(page2.hasMore).toBe(false);
      const seqs = [...page1.messages, ...page2.messages].map((m: { seq: number }) => m.seq);
      expect(seqs).toEqual(Array.from({ length: 230 }, (_, i) => i + 2));
    });

    it('answers sync for a channel one cannot read with an error naming it, and the others still', async () => {
      const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      const mine = await createChannel(t, bob);
      const theirs = await createChannel(t, alice, [], 'private');
      const b = (await connect(bob)).client;
      b.send('sync', { channels: { [theirs]: 0, [mine]: 0 }, ref: 'sx' });
      expect(await b.next('error')).toMatchObject({ code: 'not_found', ref: 'sx', details: { channelId: theirs } });
      expect(await b.next('sync.result')).toMatchObject({ channelId: mine, messages: [], headSeq: 0, hasMore: false });
    });

    it('pages history backwards', async () => {
      const alice = await registerUser(t, 'alice');
      const channelId = await createChannel(t, alice);
      for (let i = 1; i <= 5; i++) await sendHttp(alice, channelId, `h${i}`, `hist-${i}`);
      const a = (await connect(alice)).client;
      a.send('history', { channelId, limit: 2, ref: 'h' });
      const latest = await a.next('history.result');
      expect([latest.messages.map((m: { seq: number }) => m.seq), latest.hasMore, latest.ref]).toEqual([[4, 5], true, 'h']);
      a.send('history', { channelId, beforeSeq: 2 });
      const oldest = await a.next('history.result');
      expect([oldest.messages.map((m: { seq: number }) => m.seq), oldest.hasMore]).toEqual([[1], false]);
    });

    it('answers ping with pong', async () => {
      const alice = await registerUser(t, 'alice');
      const a = (await connect(alice)).client;
      a.send('ping', { ref: 'p1' });
      expect(await a.next('pong')).toEqual({ serverTime: expect.any(String), ref: 'p1' });
    });
  });

  describe('errors never close the connection', () => {
    let alice: TestUser;
    let bob: TestUser;
    let a: TestClient;
    beforeEach(async () => {
      [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
      a = (await connect(alice)).client;
    });
    afterEach(async () => {
      a.send('ping', {});
      await a.next('pong');
    });

    it('answers malformed JSON with bad_json', async () => {
      a.sendRaw('{"event": "message.send", ');
      expect(await a.next('error')).toMatchObject({ code: 'bad_json' });
      a.sendRaw('[1,2,3]');
      expect(await a.next('error')).toMatchObject({ code: 'bad_json' });
    });

    it('answers an unknown event with unknown_event, echoing ref', async () => {
      a.send('message.sned', { ref: 'typo' });
      expect(await a.next('error')).toMatchObject({ code: 'unknown_event', ref: 'typo' });
    });

    it('answers a bad payload with invalid_payload, field details, ref and clientMsgId, and stores nothing', async () => {
      const channelId = await createChannel(t, alice, [bob]);
      const b = (await connect(bob)).client;
      a.send('message.send', { channelId, text: '', clientMsgId: 'bad-1', ref: 'b1' });
      expect(await a.next('error')).toMatchObject({ code: 'invalid_payload', ref: 'b1', clientMsgId: 'bad-1', details: { fields: { text: expect.any(Array) } } });
      a.send('message.send', { channelId, text: 'x', clientMsgId: 'bad-2', extra: 1 });
      expect(await a.next('error')).toMatchObject({ code: 'invalid_payload', details: { fields: { extra: expect.any(Array) } } });
      a.send('read', { channelId, seq: 'three' });
      expect(await a.next('error')).toMatchObject({ code: 'invalid_payload', details: { fields: { seq: expect.any(Array) } } });
      // The type is what is wrong with "5", not its size.
      a.send('read', { channelId, seq: '5' });
      expect(await a.next('error')).toMatchObject({ code: 'invalid_payload', message: 'seq: seq must be an integer' });
      a.send('message.send', 'not an object');
      expect(await a.next('error')).toMatchObject({ code: 'invalid_payload' });
      // A channel and a DM at once: which one was meant is not guessed.
      a.send('message.send', { channelId, to: bob.username, text: 'x', clientMsgId: 'bad-3' });
      expect(await a.next('error')).toMatchObject({ code: 'invalid_payload', message: 'to: give channelId or to, not both', clientMsgId: 'bad-3', details: { fields: { to: expect.any(Array) } } });
      a.send('message.send', { text: 'x', clientMsgId: 'bad-4' });
      expect(await a.next('error')).toMatchObject({ code: 'invalid_payload', clientMsgId: 'bad-4', details: { fields: { channelId: expect.any(Array) } } });
      await b.expectNone('message.new', 200);
      const page = await t.http().get(`/channels/${channelId}/messages`).set(alice.auth).expect(200);
      expect(page.body.messages).toEqual([]);
    });

    it('answers forbidden for a public channel one is not in, not_found for an unknown one', async () => {
      const channelId = await createChannel(t, bob);
      a.send('message.send', { channelId, text: 'hi', clientMsgId: 'f-1', ref: 'f' });
      expect(await a.next('error')).toEqual({ code: 'forbidden', message: expect.any(String), ref: 'f', clientMsgId: 'f-1' });
      a.send('message.send', { channelId: '00000000-0000-4000-8000-000000000000', text: 'hi', clientMsgId: 'f-2' });
      expect(await a.next('error')).toMatchObject({ code: 'not_found', clientMsgId: 'f-2' });
      a.send('message.send', { to: 'ghost_user', text: 'hi', clientMsgId: 'f-3' });
      expect(await a.next('error')).toMatchObject({ code: 'not_found', clientMsgId: 'f-3' });
      a.send('typing', { channelId });
      expect(await a.next('error')).toMatchObject({ code: 'forbidden' });
    });
  });

  it('publishes an AsyncAPI document and Prometheus metrics for the gateway', async () => {
    const doc = (await t.http().get('/asyncapi.json').expect(200)).body;
    expect(doc.asyncapi).toBe('3.1.0');
    // Its own counted error, so that the test does not depend on an earlier one's.
    const client = (await connect(await registerUser(t, 'metrics'))).client;
    client.sendRaw('{"event": ');
    expect(await client.next('error')).toMatchObject({ code: 'bad_json' });
    const metrics = (await t.http().get('/metrics').expect(200)).text;
    for (const name of ['parley_ws_connections', 'parley_messages_sent_total', 'parley_messages_delivered_total', 'parley_send_ack_seconds_bucket', 'parley_fanout_write_seconds_bucket', 'parley_errors_total']) {
      expect(metrics).toContain(name);
    }
    expect(metrics).toMatch(/parley_errors_total\{code="bad_json",transport="ws"\} [1-9]/);
  });

  it("times each commit's fan-out to a channel's connections (parley_fanout_write_seconds)", async () => {
    const walks = async () => Number(/^parley_fanout_write_seconds_count (\d+)$/m.exec((await t.http().get('/metrics').expect(200)).text)?.[1]);
    const [alice, bob] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob')]);
    const channelId = await createChannel(t, alice, [bob]);
    const a = (await connect(alice)).client;
    const b = (await connect(bob)).client;
    const before = await walks();
    a.send('message.send', { channelId, text: 'timed', clientMsgId: 'walk-1' });
    await a.next('message.ack');
    await b.next('message.new');
    // One channel in one commit: one walk (and the sum of the times grew with it).
    expect(await walks()).toBe(before + 1);
  });
});
