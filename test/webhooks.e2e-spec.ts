import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { eventually, sleep } from './helpers/cluster.js';
import { createChannel, DATABASES, DbKind, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';
import { ReceivedHook, WebhookReceiver } from './helpers/webhook-receiver.js';
import type { MessageView } from '../src/messages/message.mapper.js';
import { verifyWebhook } from '../src/webhooks/webhook-signature.js';

/**
 * Webhooks as a receiver sees them: every committed event POSTed, signed, in order per channel,
 * retried with backoff while the receiver fails, dropped after WEBHOOK_RETRY_FOR; none when
 * WEBHOOK_URL is unset; notification.needed for members with no connection, folded and muted.
 * (Crash safety: test/webhooks-process.e2e-spec.ts; several instances: webhooks-cluster.)
 */

const SECRET = 'whsec-test-0123456789abcdef';

/** The channel an event is about (its ordering key), or null for user events. */
function channelOf(e: ReceivedHook['event']): string | null {
  const d = e.data;
  return d.message?.channelId ?? d.channelId ?? d.channel?.id ?? null;
}

function hooksEnv(receiver: WebhookReceiver, extra: Record<string, string> = {}): Record<string, string> {
  return {
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_MIN_MS: '50',
    WEBHOOK_RETRY_MAX_MS: '400',
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_TIMEOUT_MS: '2000',
    NOTIFICATION_INTERVAL_MS: '2000',
    ...extra,
  };
}

async function send(t: TestApp, user: TestUser, channelId: string, text: string): Promise<MessageView> {
  const res = await t.http().post(`/channels/${channelId}/messages`).set(user.auth).send({ text, clientMsgId: randomUUID() }).expect(201);
  return res.body.message;
}

async function outboxCount(t: TestApp): Promise<number> {
  const [row] = await t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM webhook_outbox');
  return Number(row.n);
}

async function metric(t: TestApp, name: string): Promise<number> {
  const text = (await t.http().get('/metrics').expect(200)).text;
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && /^[a-z_]+(\{[^}]*\})? /.test(l) && l.split(/[{ ]/)[0] === name)
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

describe.each(DATABASES)('webhooks on %s', (db: DbKind) => {
  let receiver: WebhookReceiver;
  let t: TestApp;
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    t = await startApp(db, hooksEnv(receiver));
  });
  afterEach(() => {
    receiver.decide = () => 204;
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('POSTs every committed event as signed JSON {id, type, createdAt, data}, with a delivery id', async () => {
    const alice = await registerUser(t, 'alice');
    const bob = await registerUser(t, 'bob');
    const carol = await registerUser(t, 'carol');
    const channelId = await createChannel(t, alice, [bob]);
    await t.http().post(`/channels/${channelId}/join`).set(carol.auth).expect(200);
    const message = await send(t, carol, channelId, 'hello hooks');
    await t.http().post(`/channels/${channelId}/leave`).set(carol.auth).expect(204);
    const dm = (await t.http().post('/dms').set(bob.auth).send({ username: carol.username }).expect(200)).body;

    await eventually('the events', () => receiver.accepted.filter((r) => channelOf(r.event) === channelId && r.event.type !== 'notification.needed').length >= 4 && receiver.ofType('channel.created').some((r) => r.event.data.channel.id === dm.channelId));
    const users = receiver.ofType('user.created').map((r) => r.event.data.user);
    expect(users).toEqual(expect.arrayContaining([alice, bob, carol].map((u) => ({ id: u.id, username: u.username, createdAt: expect.any(String) }))));

    const ofChannel = receiver.accepted.filter((r) => channelOf(r.event) === channelId && r.event.type !== 'notification.needed');
    expect(ofChannel.map((r) => r.event.type)).toEqual(['channel.created', 'member.joined', 'message.created', 'member.left']);
    expect(ofChannel[0].event.data).toEqual({
      channel: { id: channelId, kind: 'channel', name: expect.any(String), visibility: 'public', createdAt: expect.any(String) },
      createdBy: { id: alice.id, username: alice.username },
      members: [{ id: alice.id, username: alice.username }, { id: bob.id, username: bob.username }],
    });
    expect(ofChannel[1].event.data).toEqual({ channelId, user: { id: carol.id, username: carol.username } });
    expect(ofChannel[2].event.data.message).toMatchObject({ id: message.id, channelId, seq: message.seq, text: 'hello hooks', sender: { id: carol.id, username: carol.username } });
    expect(ofChannel[3].event.data).toEqual({ channelId, user: { id: carol.id, username: carol.username } });
    const dmCreated = receiver.ofType('channel.created').find((r) => r.event.data.channel.id === dm.channelId)!;
    expect(dmCreated.event.data).toMatchObject({ channel: { kind: 'dm', name: null, visibility: 'private' }, createdBy: { id: bob.id } });

    for (const r of receiver.accepted) {
      expect(Object.keys(r.event).sort()).toEqual(['createdAt', 'data', 'id', 'type']);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-parley-delivery']).toBe(r.event.id);
      expect(r.headers['x-parley-event']).toBe(r.event.type);
      expect(r.headers['x-parley-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifyWebhook(SECRET, r.raw, r.headers['x-parley-signature'] as string)).toBe(true);
      // Another secret, another body, or the same request much later: refused.
      expect(verifyWebhook('another-secret-0123456789', r.raw, r.headers['x-parley-signature'] as string)).toBe(false);
      expect(verifyWebhook(SECRET, r.raw.replace('"data"', '"data" '), r.headers['x-parley-signature'] as string)).toBe(false);
      expect(verifyWebhook(SECRET, r.raw, r.headers['x-parley-signature'] as string, 300, Math.floor(Date.now() / 1000) + 3600)).toBe(false);
    }
    await eventually('an empty outbox', async () => (await outboxCount(t)) === 0);
  });

  it('POSTs the administration of a channel: channel.updated, member.joined and member.left with `by`', async () => {
    const [owner, bob, carol] = [await registerUser(t, 'owner'), await registerUser(t, 'bob'), await registerUser(t, 'carol')];
    const channelId = await createChannel(t, owner, [bob], 'private');
    await t.http().post(`/channels/${channelId}/members`).set(owner.auth).send({ usernames: [carol.username] }).expect(200);
    await t.http().patch(`/channels/${channelId}`).set(owner.auth).send({ topic: 'plans' }).expect(200);
    await t.http().delete(`/channels/${channelId}/members/${carol.id}`).set(owner.auth).expect(204);
    await t.http().post(`/channels/${channelId}/archive`).set(owner.auth).expect(200);
    const types = () => receiver.accepted.filter((r) => channelOf(r.event) === channelId && r.event.type !== 'notification.needed').map((r) => r.event);
    await eventually('the administration events', () => types().length === 5);
    const by = { id: owner.id, username: owner.username };
    expect(types().map((e) => e.type)).toEqual(['channel.created', 'member.joined', 'channel.updated', 'member.left', 'channel.updated']);
    expect(types()[1].data).toEqual({ channelId, user: { id: carol.id, username: carol.username }, by });
    expect(types()[2].data).toMatchObject({ channel: { id: channelId, topic: 'plans', archived: false, visibility: 'private' }, by });
    expect(types()[3].data).toEqual({ channelId, user: { id: carol.id, username: carol.username }, by });
    expect(types()[4].data).toMatchObject({ channel: { id: channelId, archived: true }, by });
  });

  it('POSTs message.updated with the current state for edits, reactions and deletes (and the quotes a delete empties), in rev order after the message', async () => {
    const alice = await registerUser(t, 'alice');
    const channelId = await createChannel(t, alice);
    const message = await send(t, alice, channelId, 'first');
    await t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text: 'a reply', clientMsgId: 'wh-reply', replyToSeq: message.seq }).expect(201);
    await t.http().patch(`/channels/${channelId}/messages/${message.seq}`).set(alice.auth).send({ text: 'first, edited' }).expect(200);
    await t.http().put(`/channels/${channelId}/messages/${message.seq}/reactions/${encodeURIComponent('👍')}`).set(alice.auth).expect(200);
    await t.http().delete(`/channels/${channelId}/messages/${message.seq}`).set(alice.auth).expect(200);
    const mine = () => receiver.accepted.filter((r) => channelOf(r.event) === channelId && r.event.type.startsWith('message.')).map((r) => r.event);
    await eventually('six message events', () => mine().length === 6);
    const events = mine();
    expect(events.map((e) => [e.type, e.data.message.seq, e.data.message.rev])).toEqual([
      ['message.created', 1, 1], ['message.created', 2, 2], ['message.updated', 1, 3], ['message.updated', 1, 4], ['message.updated', 1, 5], ['message.updated', 2, 6],
    ]);
    expect(events[2].data.message).toMatchObject({ text: 'first, edited', editedAt: expect.any(String) });
    expect(events[3].data.message.reactions).toEqual([{ emoji: '👍', count: 1, userIds: [alice.id] }]);
    expect(events[4].data.message).toMatchObject({ deleted: true, text: '' });
    expect(events[5].data.message).toMatchObject({ text: 'a reply', replyTo: { seq: 1, text: '', deleted: true } });
  });

  it("delivers a channel's events in order; a failing event holds back its channel only, retried with growing waits", async () => {
    const alice = await registerUser(t, 'alice');
    const [a, b] = [await createChannel(t, alice), await createChannel(t, alice)];
    await eventually('channel.created of both', () => [a, b].every((c) => receiver.accepted.some((r) => channelOf(r.event) === c)));
    let failA = true;
    receiver.decide = (hook) => (failA && channelOf(hook.event) === a ? 503 : 204);
    const sentA = [];
    const sentB = [];
    for (let i = 1; i <= 5; i++) {
      sentA.push(await send(t, alice, a, `a${i}`));
      sentB.push(await send(t, alice, b, `b${i}`));
    }
    await eventually("b's five messages", () => receiver.ofType('message.created').filter((r) => channelOf(r.event) === b).length === 5);
    expect(receiver.ofType('message.created').filter((r) => channelOf(r.event) === b).map((r) => r.event.data.message.seq)).toEqual([1, 2, 3, 4, 5]);
    // a's first message is tried again and again; the later ones wait behind it, never sent.
    await eventually("several attempts at a's first message", () => receiver.requests.filter((r) => channelOf(r.event) === a && r.event.type === 'message.created').length >= 5, 15000);
    const triedA = receiver.requests.filter((r) => channelOf(r.event) === a && r.event.type === 'message.created');
    expect(new Set(triedA.map((r) => r.event.data.message.seq))).toEqual(new Set([1]));
    expect(new Set(triedA.map((r) => r.headers['x-parley-delivery']))).toEqual(new Set([triedA[0].event.id]));
    expect(new Set(triedA.map((r) => r.raw)).size).toBe(1); // the same bytes every time, signed anew
    // Backoff: the k-th wait is at least half of 50 ms doubled k-1 times (equal jitter), capped at 400.
    const waits = triedA.slice(1).map((r, k) => r.at - triedA[k].at);
    waits.forEach((w, k) => expect(w).toBeGreaterThanOrEqual(Math.min(400, 50 * 2 ** k) / 2 - 5));
    expect(await metric(t, 'parley_webhook_backlog')).toBeGreaterThanOrEqual(5);
    expect(await metric(t, 'parley_webhook_attempts_total')).toBeGreaterThan(0);

    failA = false;
    await eventually("a's five messages", () => receiver.ofType('message.created').filter((r) => channelOf(r.event) === a).length === 5, 15000);
    expect(receiver.ofType('message.created').filter((r) => channelOf(r.event) === a).map((r) => r.event.data.message.id)).toEqual(sentA.map((m) => m.id));
    await eventually('an empty outbox', async () => (await outboxCount(t)) === 0);
    expect(await metric(t, 'parley_webhook_backlog')).toBe(0);
  });

  it('retries for WEBHOOK_RETRY_FOR, then drops the event (counted) and lets its channel go on', async () => {
    const short = await startApp(db, hooksEnv(receiver, { WEBHOOK_RETRY_FOR: '1500ms' }));
    try {
      const alice = await registerUser(short, 'alice');
      const channelId = await createChannel(short, alice);
      await eventually('channel.created', () => receiver.accepted.some((r) => channelOf(r.event) === channelId));
      const doomed = await send(short, alice, channelId, 'never accepted');
      receiver.decide = (hook) => (hook.event.data.message?.id === doomed.id ? 500 : 204);
      const next = await send(short, alice, channelId, 'after it');
      await eventually('the next message, once the first is dropped', () => receiver.ofType('message.created').some((r) => r.event.data.message.id === next.id), 15000);
      expect(receiver.accepted.some((r) => r.event.data.message?.id === doomed.id)).toBe(false);
      const attempts = receiver.requests.filter((r) => r.event.data.message?.id === doomed.id);
      expect(attempts.length).toBeGreaterThanOrEqual(3);
      expect(attempts.at(-1)!.at - attempts[0].at).toBeLessThan(1500 + 1000);
      expect(await metric(short, 'parley_webhook_dropped_total')).toBe(1);
      await eventually('an empty outbox', async () => (await outboxCount(short)) === 0);
    } finally {
      await short.close();
    }
  });

  describe('notification.needed', () => {
    const notified = (userId: string, channelId: string) =>
      receiver.ofType('notification.needed').filter((r) => r.event.data.user.id === userId && r.event.data.channel.id === channelId);

    it('goes to members with no open connection, never to the sender or a connected member; folded per user and channel', async () => {
      const [alice, bob, carol] = [await registerUser(t, 'alice'), await registerUser(t, 'bob'), await registerUser(t, 'carol')];
      const channelId = await createChannel(t, alice, [bob, carol]);
      const { client } = await TestClient.connect(t.wsUrl, carol.token);
      try {
        const first = await send(t, alice, channelId, 'are you there?');
        await eventually('a notification for bob', () => notified(bob.id, channelId).length === 1);
        expect(notified(bob.id, channelId)[0].event.data).toEqual({
          user: { id: bob.id, username: bob.username },
          channel: { id: channelId, kind: 'channel', name: expect.any(String) },
          message: expect.objectContaining({ id: first.id, seq: first.seq, text: 'are you there?' }),
          reason: 'offline',
          unreadCount: 1,
        });
        // Ordered after the message it is about (same channel, same key).
        const types = receiver.accepted.filter((r) => channelOf(r.event) === channelId).map((r) => r.event.type);
        expect(types.indexOf('message.created')).toBeLessThan(types.indexOf('notification.needed'));

        await send(t, alice, channelId, 'hello?');
        await send(t, alice, channelId, 'hello??');
        await eventually('the three messages delivered', () => receiver.ofType('message.created').filter((r) => channelOf(r.event) === channelId).length === 3);
        await sleep(300);
        expect(notified(bob.id, channelId)).toHaveLength(1); // folded
        expect(notified(carol.id, channelId)).toHaveLength(0); // connected
        expect(notified(alice.id, channelId)).toHaveLength(0); // the sender

        await sleep(2000); // NOTIFICATION_INTERVAL_MS
        await send(t, alice, channelId, 'last call');
        await eventually('a second notification for bob', () => notified(bob.id, channelId).length === 2);
        expect(notified(bob.id, channelId)[1].event.data.unreadCount).toBe(4);
      } finally {
        await client.close();
      }
    });

    it('is not made for a member who muted the channel, and is again once unmuted', async () => {
      const [alice, bob] = [await registerUser(t, 'alice'), await registerUser(t, 'bob')];
      const channelId = await createChannel(t, alice, [bob]);
      expect((await t.http().post(`/channels/${channelId}/mute`).set(bob.auth).expect(200)).body).toEqual({ channelId, muted: true });
      await t.http().post(`/channels/${channelId}/mute`).set(bob.auth).expect(200); // idempotent
      await send(t, alice, channelId, 'muted');
      await eventually('the message', () => receiver.ofType('message.created').some((r) => channelOf(r.event) === channelId));
      await sleep(300);
      expect(notified(bob.id, channelId)).toHaveLength(0);

      expect((await t.http().delete(`/channels/${channelId}/mute`).set(bob.auth).expect(200)).body).toEqual({ channelId, muted: false });
      await send(t, alice, channelId, 'unmuted');
      await eventually('a notification for bob', () => notified(bob.id, channelId).length === 1);
    });

    it('mentions: a mentioned member is notified even while connected; one who is not mentioned is not', async () => {
      const [alice, bob, carol] = [await registerUser(t, 'alice'), await registerUser(t, 'bob'), await registerUser(t, 'carol')];
      const channelId = await createChannel(t, alice, [bob, carol]);
      const { client } = await TestClient.connect(t.wsUrl, bob.token);
      const { client: carolClient } = await TestClient.connect(t.wsUrl, carol.token);
      try {
        const plain = await send(t, alice, channelId, 'hi all');
        await eventually('the message', () => receiver.ofType('message.created').some((r) => r.event.data.message.id === plain.id));
        await sleep(200);
        expect(notified(bob.id, channelId)).toHaveLength(0); // connected, not mentioned
        const sent = await send(t, alice, channelId, `hi @${bob.username}`);
        await eventually('a mention notification', () => notified(bob.id, channelId).length === 1);
        expect(notified(bob.id, channelId)[0].event.data).toMatchObject({ reason: 'mention', message: { id: sent.id } });
        expect(notified(carol.id, channelId)).toHaveLength(0);
      } finally {
        await client.close();
        await carolClient.close();
      }
    });

    it("shows muted in the member's own conversation: the list, and conversation.update to each of their devices; the others' view is unchanged", async () => {
      const [alice, bob] = [await registerUser(t, 'alice'), await registerUser(t, 'bob')];
      const channelId = await createChannel(t, alice, [bob]);
      const mine = async (u: TestUser) => (await t.http().get('/conversations').set(u.auth).expect(200)).body.find((c: { channelId: string }) => c.channelId === channelId);
      expect(await mine(bob)).toMatchObject({ muted: false });
      const [{ client: phone }, { client: laptop }, { client: aliceClient }] = await Promise.all([
        TestClient.connect(t.wsUrl, bob.token), TestClient.connect(t.wsUrl, bob.token), TestClient.connect(t.wsUrl, alice.token),
      ]);
      try {
        await t.http().post(`/channels/${channelId}/mute`).set(bob.auth).expect(200);
        for (const c of [phone, laptop]) expect((await c.next('conversation.update', (d) => d.conversation.channelId === channelId)).conversation).toMatchObject({ muted: true, unreadCount: 0 });
        expect(await mine(bob)).toMatchObject({ muted: true });
        expect(await mine(alice)).toMatchObject({ muted: false });
        await aliceClient.expectNone('conversation.update', 200);
        // Muting again changes nothing and says nothing; a message's update still shows it muted.
        await t.http().post(`/channels/${channelId}/mute`).set(bob.auth).expect(200);
        await phone.expectNone('conversation.update', 200);
        await send(t, alice, channelId, 'hello');
        expect((await phone.next('conversation.update', (d) => d.conversation.channelId === channelId && d.conversation.unreadCount === 1)).conversation.muted).toBe(true);
        await t.http().delete(`/channels/${channelId}/mute`).set(bob.auth).expect(200);
        expect((await laptop.next('conversation.update', (d) => d.conversation.channelId === channelId && !d.conversation.muted)).conversation).toMatchObject({ muted: false, unreadCount: 1 });
        expect(await mine(bob)).toMatchObject({ muted: false });
      } finally {
        await Promise.all([phone.close(), laptop.close(), aliceClient.close()]);
      }
    });

    it('mute: members only, by channel id', async () => {
      const [alice, bob] = [await registerUser(t, 'alice'), await registerUser(t, 'bob')];
      const pub = await createChannel(t, alice);
      const priv = await createChannel(t, alice, [], 'private');
      expect((await t.http().post(`/channels/${pub}/mute`).set(bob.auth).expect(403)).body.code).toBe('forbidden');
      expect((await t.http().post(`/channels/${priv}/mute`).set(bob.auth).expect(404)).body.code).toBe('not_found');
      expect((await t.http().delete(`/channels/${randomUUID()}/mute`).set(bob.auth).expect(404)).body.code).toBe('not_found');
      expect((await t.http().post('/channels/nope/mute').set(bob.auth).expect(400)).body.code).toBe('invalid_payload');
      expect((await t.http().post(`/channels/${pub}/mute`).expect(401)).body.code).toBe('unauthorized');
    });
  });
});

describe.each(DATABASES)('without WEBHOOK_URL on %s', (db: DbKind) => {
  it('writes nothing to the outbox, and mute still works', async () => {
    const t = await startApp(db);
    try {
      const alice = await registerUser(t, 'alice');
      const bob = await registerUser(t, 'bob');
      const channelId = await createChannel(t, alice, [bob]);
      await send(t, alice, channelId, 'no hooks');
      await t.http().post(`/channels/${channelId}/leave`).set(bob.auth).expect(204);
      await t.http().post(`/channels/${channelId}/mute`).set(alice.auth).expect(200);
      await sleep(100);
      expect(await outboxCount(t)).toBe(0);
      expect(await metric(t, 'parley_webhook_backlog')).toBe(0);
    } finally {
      await t.close();
    }
  });
});
