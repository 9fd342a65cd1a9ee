import { createChannel, DATABASES, registerUser, suiteApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/**
 * Who may learn what about whom: blocks, accepting conversations, presence only through
 * conversations both sides accepted, channel names that reveal no private channel.
 */
describe.each(DATABASES)('privacy and trust on %s', (db) => {
  const suite = suiteApp(db);
  let t: TestApp;
  beforeAll(() => {
    t = suite.t;
  });

  async function connect(u: TestUser) {
    const { client, ready } = await TestClient.connect(t.wsUrl, u.token);
    suite.track(client);
    return { client, ready };
  }
  const users = (n: number) => Promise.all(Array.from({ length: n }, () => registerUser(t, 'p')));
  const dm = async (from: TestUser, to: TestUser) => (await t.http().post('/dms').set(from.auth).send({ username: to.username }).expect(200)).body;
  const sendHttp = (u: TestUser, channelId: string, text: string) =>
    t.http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text, clientMsgId: `${u.username}-${Math.random()}` });
  const block = (u: TestUser, target: TestUser) => t.http().post(`/users/${target.id}/block`).set(u.auth);
  const unblock = (u: TestUser, target: TestUser) => t.http().delete(`/users/${target.id}/block`).set(u.auth);
  const conversation = async (u: TestUser, channelId: string) =>
    (await t.http().get('/conversations').set(u.auth).expect(200)).body.find((c: { channelId: string }) => c.channelId === channelId);

  describe('presence only through conversations both sides accepted', () => {
    it("does not show a stranger who opens a DM the peer's status", async () => {
      const [alice, mallory] = await users(2);
      await connect(alice);
      const opened = await dm(mallory, alice);
      expect(opened).toMatchObject({ kind: 'dm', accepted: true, peer: { id: alice.id, status: 'offline' } });
      expect((await conversation(mallory, opened.channelId)).peer.status).toBe('offline');
    });

    it('sends no presence.update through a DM until its recipient accepts it, then both ways', async () => {
      const [alice, mallory] = await users(2);
      const m = (await connect(mallory)).client;
      const { channelId } = await dm(mallory, alice);
      const { client: a, ready } = await connect(alice);
      await m.expectNone('presence.update', 300);
      const request = ready.conversations.find((c: { channelId: string }) => c.channelId === channelId);
      expect(request).toMatchObject({ accepted: false, peer: { id: mallory.id, status: 'offline' } });

      const accepted = await t.http().post(`/channels/${channelId}/accept`).set(alice.auth).expect(200);
      expect(accepted.body).toMatchObject({ channelId, accepted: true, peer: { id: mallory.id, status: 'online' } });
      expect(await m.next('presence.update')).toMatchObject({ user: { id: alice.id }, status: 'online' });
      expect(await a.next('presence.update')).toMatchObject({ user: { id: mallory.id }, status: 'online' });
      expect((await a.next('conversation.update', (d) => d.conversation.channelId === channelId)).conversation.accepted).toBe(true);
      await a.close();
      expect(await m.next('presence.update')).toMatchObject({ user: { id: alice.id }, status: 'offline' });
      // Accepting again changes nothing.
      await t.http().post(`/channels/${channelId}/accept`).set(alice.auth).expect(200);
    });

    it('counts a reply in the DM as accepting it; reading it does not', async () => {
      const [alice, mallory] = await users(2);
      const m = (await connect(mallory)).client;
      const a = (await connect(alice)).client;
      m.send('message.send', { to: alice.username, text: 'hi', clientMsgId: 'req-1' });
      const { channelId } = (await m.next('message.ack')).message;
      const seen = await a.next('conversation.update', (d) => d.conversation.channelId === channelId);
      expect(seen.conversation).toMatchObject({ accepted: false, peer: { id: mallory.id, status: 'offline' } });
      await t.http().post(`/channels/${channelId}/read`).set(alice.auth).send({ seq: 1 }).expect(200);
      await m.expectNone('presence.update', 300);
      a.send('message.send', { channelId, text: 'hello', clientMsgId: 'reply-1' });
      await a.next('message.ack');
      expect(await m.next('presence.update')).toMatchObject({ user: { id: alice.id }, status: 'online' });
      expect((await conversation(mallory, channelId)).peer.status).toBe('online');
    });

    it('lets a member added by someone else accept a channel by reading it, and leave it', async () => {
      const [alice, mallory] = await users(2);
      const channelId = await createChannel(t, mallory, [alice], 'private');
      const m = (await connect(mallory)).client;
      const { client: a, ready } = await connect(alice);
      expect(ready.conversations.find((c: { channelId: string }) => c.channelId === channelId)).toMatchObject({ accepted: false });
      await m.expectNone('presence.update', 300);
      await a.expectNone('presence.update', 0);
      a.send('read', { channelId, seq: 0, ref: 'r' });
      expect(await a.next('conversation.update', (d) => d.ref === 'r')).toMatchObject({ conversation: { accepted: true } });
      expect(await m.next('presence.update')).toMatchObject({ user: { id: alice.id }, status: 'online' });
      expect(await a.next('presence.update')).toMatchObject({ user: { id: mallory.id }, status: 'online' });
      await t.http().post(`/channels/${channelId}/leave`).set(alice.auth).expect(204);
    });

    it('keeps an invited member who has not accepted out of the presence of everyone in the channel', async () => {
      const [alice, bob, carol] = await users(3);
      const channelId = await createChannel(t, alice, [bob, carol]);
      const a = (await connect(alice)).client;
      await sendHttp(bob, channelId, 'bob accepts by posting').expect(201);
      const c = (await connect(carol)).client;
      const b = (await connect(bob)).client;
      expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });
      await a.expectNone('presence.update', 300, (d) => d.user.id === carol.id);
      await b.expectNone('presence.update', 0, (d) => d.user.id === carol.id);
      await c.expectNone('presence.update', 0);
    });

    it('answers accept for a channel one is not in like every other channel operation', async () => {
      const [alice, bob] = await users(2);
      const priv = await createChannel(t, alice, [], 'private');
      const pub = await createChannel(t, alice);
      expect((await t.http().post(`/channels/${priv}/accept`).set(bob.auth).expect(404)).body.code).toBe('not_found');
      expect((await t.http().post(`/channels/${pub}/accept`).set(bob.auth).expect(403)).body.code).toBe('forbidden');
      expect((await t.http().post('/channels/nope/accept').set(bob.auth).expect(400)).body.code).toBe('invalid_payload');
    });
  });

  describe('blocking', () => {
    it('refuses a send by username into a DM already in use once either side blocks (the open-DM path reads blocks from memory)', async () => {
      const [alice, bob] = await users(2);
      const b = (await connect(bob)).client;
      for (const clientMsgId of ['open-1', 'open-2']) {
        b.send('message.send', { to: alice.username, text: 'hi', clientMsgId });
        await b.next('message.ack', (d) => d.clientMsgId === clientMsgId);
      }
      await block(alice, bob).expect(200);
      b.send('message.send', { to: alice.username, text: 'still there?', clientMsgId: 'open-3' });
      expect(await b.next('error')).toMatchObject({ code: 'forbidden', clientMsgId: 'open-3' });
      await unblock(alice, bob).expect(204);
      b.send('message.send', { to: alice.username, text: 'again', clientMsgId: 'open-4' });
      expect((await b.next('message.ack', (d) => d.clientMsgId === 'open-4')).message).toMatchObject({ seq: 3 });
      // And the other way: bob blocks alice, and his own sends stop too.
      await block(bob, alice).expect(200);
      b.send('message.send', { to: alice.username, text: 'bye', clientMsgId: 'open-5' });
      expect(await b.next('error')).toMatchObject({ code: 'forbidden', clientMsgId: 'open-5' });
    });

    it('stops DMs with the blocked user both ways, opening new ones included, until unblocked', async () => {
      const [alice, bob, carol] = await users(3);
      const { channelId } = await dm(bob, alice);
      await sendHttp(bob, channelId, 'hi alice').expect(201);
      const res = await block(alice, bob).expect(200);
      expect(res.body).toEqual({ user: { id: bob.id, username: bob.username }, blockedAt: expect.stringMatching(/^\d{4}-/) });
      expect((await sendHttp(bob, channelId, 'hello?').expect(403)).body.code).toBe('forbidden');
      expect((await sendHttp(alice, channelId, 'no').expect(403)).body.code).toBe('forbidden');
      const b = (await connect(bob)).client;
      b.send('message.send', { to: alice.username, text: 'again', clientMsgId: 'blocked-1' });
      expect(await b.next('error')).toMatchObject({ code: 'forbidden', clientMsgId: 'blocked-1' });
      b.send('typing', { channelId });
      expect(await b.next('error')).toMatchObject({ code: 'forbidden' });
      // The conversation stays readable for both.
      await t.http().get(`/channels/${channelId}/messages`).set(bob.auth).expect(200);

      await block(alice, carol).expect(200);
      expect((await t.http().post('/dms').set(carol.auth).send({ username: alice.username }).expect(403)).body.code).toBe('forbidden');
      expect((await t.http().post('/dms').set(alice.auth).send({ username: carol.username }).expect(403)).body.code).toBe('forbidden');

      const list = await t.http().get('/users/me/blocks').set(alice.auth).expect(200);
      expect(list.body.map((e: { user: { id: string } }) => e.user.id).sort()).toEqual([bob.id, carol.id].sort());
      expect((await t.http().get('/users/me/blocks').set(bob.auth).expect(200)).body).toEqual([]);

      await unblock(alice, bob).expect(204);
      await sendHttp(bob, channelId, 'friends again').expect(201);
      expect((await t.http().get('/users/me/blocks').set(alice.auth).expect(200)).body.map((e: { user: { id: string } }) => e.user.id)).toEqual([carol.id]);
    });

    it('stops presence both ways at once, and unblocking brings it back', async () => {
      const [alice, bob] = await users(2);
      const { channelId } = await dm(alice, bob);
      await t.http().post(`/channels/${channelId}/accept`).set(bob.auth).expect(200);
      const a = (await connect(alice)).client;
      const b = (await connect(bob)).client;
      expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });

      await block(bob, alice).expect(200);
      expect(await a.next('presence.update')).toEqual({ user: { id: bob.id, username: bob.username }, status: 'offline', lastSeenAt: null });
      expect(await b.next('presence.update', (d) => d.user.id === alice.id && d.status === 'offline')).toMatchObject({ lastSeenAt: null });
      expect((await conversation(alice, channelId)).peer.status).toBe('offline');
      expect((await conversation(bob, channelId)).peer.status).toBe('offline');
      const b2 = (await connect(bob)).client;
      await b2.close();
      await b.close();
      await a.expectNone('presence.update', 300);

      const b3 = (await connect(bob)).client;
      await a.expectNone('presence.update', 200); // bob's coming back is hidden too
      await unblock(bob, alice).expect(204);
      expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });
      expect(await b3.next('presence.update')).toMatchObject({ user: { id: alice.id }, status: 'online' });
      expect((await conversation(alice, channelId)).peer.status).toBe('online');
    });

    it('also hides presence through shared channels', async () => {
      const [alice, bob] = await users(2);
      const channelId = await createChannel(t, alice, [bob]);
      await t.http().post(`/channels/${channelId}/accept`).set(bob.auth).expect(200);
      await block(alice, bob).expect(200);
      const a = (await connect(alice)).client;
      const b = (await connect(bob)).client;
      await a.expectNone('presence.update', 300);
      await b.expectNone('presence.update', 0);
      // Messages in the shared channel still flow: a block is about DMs, invitations and presence.
      await sendHttp(bob, channelId, 'still here').expect(201);
      expect((await a.next('message.new')).message.text).toBe('still here');
    });

    it('leaves members who blocked the creator out of a new channel', async () => {
      const [alice, mallory, carol] = await users(3);
      await block(alice, mallory).expect(200);
      const res = await t.http().post('/channels').set(mallory.auth).send({ name: `trap-${Date.now()}`, visibility: 'private', members: [alice.username, carol.username] }).expect(201);
      expect(res.body.memberCount).toBe(2);
      expect(await conversation(alice, res.body.id)).toBeUndefined();
      expect(await conversation(carol, res.body.id)).toMatchObject({ accepted: false });
      expect((await t.http().get(`/channels/${res.body.id}/messages`).set(alice.auth).expect(404)).body.code).toBe('not_found');
    });

    it('answers 400 for oneself or a bad id, 404 for an unknown user, and is idempotent', async () => {
      const [alice, bob] = await users(2);
      expect((await block(alice, alice).expect(400)).body.code).toBe('invalid_payload');
      expect((await t.http().post('/users/not-a-uuid/block').set(alice.auth).expect(400)).body.code).toBe('invalid_payload');
      const ghost = '00000000-0000-4000-8000-000000000000';
      expect((await t.http().post(`/users/${ghost}/block`).set(alice.auth).expect(404)).body.code).toBe('not_found');
      expect((await t.http().delete(`/users/${ghost}/block`).set(alice.auth).expect(404)).body.code).toBe('not_found');
      const first = await block(alice, bob).expect(200);
      const again = await block(alice, bob).expect(200);
      expect(again.body).toEqual(first.body);
      await unblock(alice, bob).expect(204);
      await unblock(alice, bob).expect(204);
      await t.http().get('/users/me/blocks').expect(401);
    });
  });

  describe('channel names', () => {
    it('lets anyone create a public channel named like a private channel they cannot see, and join by name finds only it', async () => {
      const [alice, bob, carol] = await users(3);
      const name = `secret-${Date.now().toString(36)}`;
      const hidden = await t.http().post('/channels').set(alice.auth).send({ name, visibility: 'private' }).expect(201);
      // Private names are not unique either: nobody outside can tell one exists.
      await t.http().post('/channels').set(carol.auth).send({ name, visibility: 'private' }).expect(201);
      const b = (await connect(bob)).client;
      b.send('channel.join', { name: name.toUpperCase() });
      const joined = await b.next('channel.joined');
      expect(joined.conversation).toMatchObject({ kind: 'channel', name: name.toUpperCase() });
      expect(joined.conversation.channelId).not.toBe(hidden.body.id);
      // Public names stay unique, and a private channel may not take one.
      expect((await t.http().post('/channels').set(carol.auth).send({ name, visibility: 'public' }).expect(409)).body.code).toBe('conflict');
      expect((await t.http().post('/channels').set(carol.auth).send({ name, visibility: 'private' }).expect(409)).body.code).toBe('conflict');
    });
  });
});
