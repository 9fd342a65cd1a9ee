import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createChannel, DATABASES, registerUser, suiteApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies */

/**
 * Protocol v1.1, messages that change: edits, deletes, reactions, replies, mentions, the counts
 * they move, resume by {seq, rev} and search, over HTTP and WebSocket, every refusal with its code.
 */
describe.each(DATABASES)('messages that change on %s', (db) => {
  const suite = suiteApp(db);
  let t: TestApp;
  beforeAll(() => {
    t = suite.t;
  });

  const user = (p = 'ch') => registerUser(t, p);
  async function connect(u: TestUser) {
    const { client, ready } = await TestClient.connect(t.wsUrl, u.token);
    suite.track(client);
    return { client, ready };
  }
  async function send(u: TestUser, channelId: string, text: string, extra: Record<string, unknown> = {}): Promise<any> {
    const res = await t.http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text, clientMsgId: randomUUID(), ...extra }).expect(201);
    return res.body.message;
  }
  const path = (channelId: string, seq: number | string, rest = '') => `/channels/${channelId}/messages/${seq}${rest}`;
  const edit = (u: TestUser, channelId: string, seq: number | string, text: unknown) => t.http().patch(path(channelId, seq)).set(u.auth).send({ text });
  const del = (u: TestUser, channelId: string, seq: number | string) => t.http().delete(path(channelId, seq)).set(u.auth);
  const react = (u: TestUser, channelId: string, seq: number, emoji: string, add = true) =>
    (add ? t.http().put(path(channelId, seq, `/reactions/${encodeURIComponent(emoji)}`)) : t.http().delete(path(channelId, seq, `/reactions/${encodeURIComponent(emoji)}`))).set(u.auth);
  const conversation = async (u: TestUser, channelId: string): Promise<any> =>
    (await t.http().get('/conversations').set(u.auth).expect(200)).body.find((c: any) => c.channelId === channelId);
  const history = async (u: TestUser, channelId: string): Promise<any[]> =>
    (await t.http().get(`/channels/${channelId}/messages?limit=200`).set(u.auth).expect(200)).body.messages;

  describe('edits', () => {
    it('the sender edits: every member connection gets message.updated with the new rev; the asker gets it with its ref', async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      const m = await send(a, channelId, 'helo');
      expect(m).toMatchObject({ seq: 1, rev: 1, deleted: false, mentions: [], reactions: [] });
      expect(m.editedAt).toBeUndefined();
      const { client: ca } = await connect(a);
      const { client: cb } = await connect(b);
      ca.send('message.edit', { channelId, seq: 1, text: 'hello', ref: 'e1' });
      const mine = await ca.next('message.updated');
      expect(mine).toMatchObject({ ref: 'e1', message: { seq: 1, rev: 2, text: 'hello', deleted: false } });
      expect(Date.parse(mine.message.editedAt)).not.toBeNaN();
      const theirs = await cb.next('message.updated');
      expect(theirs.ref).toBeUndefined();
      expect(theirs.message).toEqual(mine.message);
      await ca.expectNone('message.updated', 200); // once, not twice
      // Over HTTP too; history shows the current state.
      const res = await edit(a, channelId, 1, 'hello there').expect(200);
      expect(res.body.message).toMatchObject({ seq: 1, rev: 3, text: 'hello there' });
      expect((await history(b, channelId))[0]).toMatchObject({ seq: 1, rev: 3, text: 'hello there' });
      expect(await conversation(b, channelId)).toMatchObject({ headSeq: 1, headRev: 3, lastMessage: { text: 'hello there', rev: 3 } });
    });

    it('the same text again changes nothing (no new rev, no fan-out): a retried edit is harmless', async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      await send(a, channelId, 'one');
      await edit(a, channelId, 1, 'two').expect(200);
      const { client: ca } = await connect(a);
      const { client: cb } = await connect(b);
      ca.send('message.edit', { channelId, seq: 1, text: 'two', ref: 'again' });
      expect(await ca.next('message.updated')).toMatchObject({ ref: 'again', message: { rev: 2, text: 'two' } });
      expect((await edit(a, channelId, 1, 'two').expect(200)).body.message.rev).toBe(2);
      await cb.expectNone('message.updated', 300);
    });

    it('refuses: not the sender (403), no such message (404), a deleted one (409), bad text or seq (400), not a member (403/404); nothing changes', async () => {
      const [a, b, outsider] = [await user(), await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      const priv = await createChannel(t, a, [b], 'private');
      await send(a, channelId, 'mine');
      await send(a, priv, 'secret');
      expect((await edit(b, channelId, 1, 'hijack').expect(403)).body.code).toBe('forbidden');
      expect((await edit(a, channelId, 2, 'x').expect(404)).body.code).toBe('not_found');
      for (const bad of ['', '   ', 'x'.repeat(4001), 5, null]) expect((await edit(a, channelId, 1, bad).expect(400)).body.code).toBe('invalid_payload');
      for (const seq of ['0', '-1', 'abc', '1.5', '99999999999']) expect((await edit(a, channelId, seq, 'x').expect(400)).body.code).toBe('invalid_payload');
      expect((await edit(outsider, channelId, 1, 'x').expect(403)).body.code).toBe('forbidden');
      expect((await edit(outsider, priv, 1, 'x').expect(404)).body.code).toBe('not_found');
      await del(a, channelId, 1).expect(200);
      expect((await edit(a, channelId, 1, 'back').expect(409)).body.code).toBe('conflict');
      expect((await history(a, channelId))[0]).toMatchObject({ text: '', deleted: true, rev: 2 });
      const { client } = await connect(b);
      client.send('message.edit', { channelId: priv, seq: 1, text: 'hijack', ref: 'r' });
      expect(await client.next('error')).toMatchObject({ code: 'forbidden', ref: 'r' });
      client.send('message.edit', { channelId: priv, seq: 1, ref: 'r2' });
      expect(await client.next('error')).toMatchObject({ code: 'invalid_payload', ref: 'r2' });
      expect((await history(a, priv))[0]).toMatchObject({ text: 'secret', rev: 1 });
    });
  });

  describe('deletes', () => {
    it('leaves a tombstone that keeps its seq; the sender, or the owner, may; a member may not delete others\' messages', async () => {
      const [owner, b, c] = [await user(), await user(), await user()];
      const channelId = await createChannel(t, owner, [b, c]);
      await send(b, channelId, 'from b');
      await send(c, channelId, 'from c');
      await send(b, channelId, 'b again', { replyToSeq: 2 });
      await react(c, channelId, 1, '👍').expect(200);
      expect((await del(c, channelId, 1).expect(403)).body.code).toBe('forbidden');
      const { client: cc } = await connect(c);
      const tomb = (await del(b, channelId, 1).expect(200)).body.message;
      expect(tomb).toMatchObject({ seq: 1, text: '', deleted: true, reactions: [], mentions: [] });
      expect((await cc.next('message.updated')).message).toEqual(tomb);
      // The owner deletes someone else's message; the reply loses its quote with it.
      expect((await del(owner, channelId, 3).expect(200)).body.message).toMatchObject({ seq: 3, deleted: true, text: '' });
      expect((await history(owner, channelId)).find((m) => m.seq === 3).replyTo).toBeUndefined();
      // Again: nothing changes.
      expect((await del(b, channelId, 1).expect(200)).body.message.rev).toBe(tomb.rev);
      expect((await history(c, channelId)).map((m) => [m.seq, m.deleted])).toEqual([[1, true], [2, false], [3, true]]);
      expect((await del(c, channelId, 4).expect(404)).body.code).toBe('not_found');
    });

    it("an admin deletes others' messages too; an archived channel refuses edits, deletes and reactions", async () => {
      const [owner, admin, c] = [await user(), await user(), await user()];
      const channelId = await createChannel(t, owner, [admin, c]);
      await send(c, channelId, 'one');
      await send(c, channelId, 'two');
      expect((await del(admin, channelId, 1).expect(403)).body.code).toBe('forbidden');
      await t.http().patch(`/channels/${channelId}/members/${admin.id}`).set(owner.auth).send({ role: 'admin' }).expect(200);
      expect((await del(admin, channelId, 1).expect(200)).body.message.deleted).toBe(true);
      await t.http().post(`/channels/${channelId}/archive`).set(owner.auth).expect(200);
      for (const res of [await edit(c, channelId, 2, 'x').expect(403), await del(c, channelId, 2).expect(403), await react(c, channelId, 2, '👍').expect(403)]) {
        expect(res.body).toMatchObject({ code: 'forbidden', details: { reason: 'archived' } });
      }
      expect((await history(c, channelId))[1]).toMatchObject({ text: 'two', rev: 2, reactions: [] });
    });

    it("the writer refuses sends and changes to a channel archived behind memory's back (another instance's archive, a bus round trip ago)", async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      await send(a, channelId, 'before');
      // What another instance's archive looks like here until its bus change arrives: the row says archived, memory does not.
      await t.app.get(DataSource).query(`UPDATE channels SET archived_at = 1 WHERE id = ${db === 'postgres' ? '$1' : '?'}`, [channelId]);
      const sent = await t.http().post(`/channels/${channelId}/messages`).set(b.auth).send({ text: 'after', clientMsgId: randomUUID() }).expect(403);
      expect(sent.body).toMatchObject({ code: 'forbidden', details: { reason: 'archived' } });
      expect((await edit(a, channelId, 1, 'changed').expect(403)).body.details).toEqual({ reason: 'archived' });
      expect((await react(b, channelId, 1, '👍').expect(403)).body.details).toEqual({ reason: 'archived' });
      expect((await history(a, channelId)).map((m) => [m.seq, m.text, m.rev])).toEqual([[1, 'before', 1]]);
    });

    it('deleted messages leave the unread count, and a deleted last message is a tombstone preview', async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      for (let i = 1; i <= 4; i++) await send(a, channelId, `m${i}`);
      expect(await conversation(b, channelId)).toMatchObject({ headSeq: 4, unreadCount: 4 });
      await del(a, channelId, 2).expect(200);
      await del(a, channelId, 4).expect(200);
      expect(await conversation(b, channelId)).toMatchObject({ headSeq: 4, unreadCount: 2, lastMessage: { seq: 4, deleted: true, text: '' } });
      await t.http().post(`/channels/${channelId}/read`).set(b.auth).send({ seq: 2 }).expect(200);
      expect(await conversation(b, channelId)).toMatchObject({ unreadCount: 1 });
      // The WebSocket's session.ready says the same, from a fresh load of the channel too.
      const { ready } = await connect(b);
      expect(ready.conversations.find((c: any) => c.channelId === channelId)).toMatchObject({ unreadCount: 1, lastMessage: { deleted: true } });
    });
  });

  describe('reactions', () => {
    it('adds and removes, idempotently; each emoji counted with its first reactors', async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      await send(a, channelId, 'react to me');
      const one = (await react(a, channelId, 1, '👍').expect(200)).body.message;
      expect(one.reactions).toEqual([{ emoji: '👍', count: 1, userIds: [a.id] }]);
      expect((await react(a, channelId, 1, '👍').expect(200)).body.message.rev).toBe(one.rev); // retry: nothing new
      await react(b, channelId, 1, '👍').expect(200);
      const both = (await react(b, channelId, 1, ':tada:').expect(200)).body.message;
      expect(both.reactions).toEqual([{ emoji: '👍', count: 2, userIds: [a.id, b.id] }, { emoji: ':tada:', count: 1, userIds: [b.id] }]);
      for (const e of ['👍🏽', '🇫🇷', '👨‍👩‍👧', '1️⃣', '❤️']) await react(b, channelId, 1, e).expect(200);
      const { client: cb } = await connect(b);
      cb.send('reaction.remove', { channelId, seq: 1, emoji: '👍', ref: 'rm' });
      expect((await cb.next('message.updated', (d) => d.ref === 'rm')).message.reactions[0]).toEqual({ emoji: '👍', count: 1, userIds: [a.id] });
      cb.send('reaction.remove', { channelId, seq: 1, emoji: '👍', ref: 'rm2' });
      expect(await cb.next('message.updated', (d) => d.ref === 'rm2')).toBeDefined(); // already gone: answered, unchanged
      expect((await react(a, channelId, 1, '👍', false).expect(200)).body.message.reactions.map((r: any) => r.emoji)).not.toContain('👍');
    });

    it('refuses a bad emoji (400), more than 20 different ones (409), a deleted message (409), a non-member (403)', async () => {
      const [a, b, outsider] = [await user(), await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      await send(a, channelId, 'x');
      for (const bad of ['a', 'ab', '👍👍', ':Bad:', '::', ':' + 'a'.repeat(33) + ':', '<b>', '1']) {
        expect((await react(a, channelId, 1, bad).expect(400)).body.code).toBe('invalid_payload');
      }
      const { client } = await connect(a);
      client.send('reaction.add', { channelId, seq: 1, emoji: 'nope', ref: 'bad' });
      expect(await client.next('error')).toMatchObject({ code: 'invalid_payload', ref: 'bad' });
      for (let i = 0; i < 20; i++) await react(a, channelId, 1, `:e${i}:`).expect(200);
      expect((await react(b, channelId, 1, ':one_too_many:').expect(409)).body.code).toBe('conflict');
      await react(b, channelId, 1, ':e3:').expect(200); // an existing emoji is always fine
      expect((await react(outsider, channelId, 1, ':e3:').expect(403)).body.code).toBe('forbidden');
      await del(a, channelId, 1).expect(200);
      expect((await react(b, channelId, 1, ':e3:').expect(409)).body.code).toBe('conflict');
    });
  });

  describe('replies and mentions', () => {
    it('a reply carries a snapshot of the message it answers; a reply to nothing is 404, to a tombstone 409', async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      await send(a, channelId, 'L'.repeat(300));
      const r = await send(b, channelId, 'yes', { replyToSeq: 1 });
      expect(r.replyTo).toEqual({ seq: 1, sender: { id: a.id, username: a.username }, text: 'L'.repeat(200) });
      const { client } = await connect(b);
      client.send('message.send', { channelId, text: 'ws reply', clientMsgId: 'wsr', replyToSeq: 2 });
      expect((await client.next('message.ack')).message.replyTo).toMatchObject({ seq: 2, text: 'yes' });
      const res = await t.http().post(`/channels/${channelId}/messages`).set(b.auth).send({ text: 'x', clientMsgId: randomUUID(), replyToSeq: 99 }).expect(404);
      expect(res.body.code).toBe('not_found');
      await del(a, channelId, 1).expect(200);
      expect((await t.http().post(`/channels/${channelId}/messages`).set(b.auth).send({ text: 'x', clientMsgId: randomUUID(), replyToSeq: 1 }).expect(409)).body.code).toBe('conflict');
      expect((await t.http().post(`/channels/${channelId}/messages`).set(b.auth).send({ text: 'x', clientMsgId: randomUUID(), replyToSeq: 0 }).expect(400)).body.code).toBe('invalid_payload');
    });

    it("deleting a message empties its quote in the replies: each reply gets a rev of its own after the delete's, live, in history and on resume", async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      await send(a, channelId, 'the secret plan'); // seq 1, rev 1
      await send(b, channelId, 'yes', { replyToSeq: 1 }); // 2
      await send(b, channelId, 'unrelated'); // 3
      await send(a, channelId, 'also', { replyToSeq: 1 }); // 4
      await send(b, channelId, 'gone', { replyToSeq: 1 }); // 5
      await del(b, channelId, 5).expect(200); // rev 6: a deleted reply keeps no quote to empty
      const { client: cb } = await connect(b);
      const tomb = (await del(a, channelId, 1).expect(200)).body.message;
      expect(tomb).toMatchObject({ seq: 1, rev: 7, deleted: true, text: '' });
      const quote = { seq: 1, sender: { id: a.id, username: a.username }, text: '', deleted: true };
      // Live, in rev order: the delete, then each reply.
      const live = [await cb.next('message.updated'), await cb.next('message.updated'), await cb.next('message.updated')].map((d) => d.message);
      expect(live.map((m: any) => [m.seq, m.rev])).toEqual([[1, 7], [2, 8], [4, 9]]);
      expect(live[1]).toMatchObject({ text: 'yes', deleted: false, replyTo: quote });
      expect(live[2]).toMatchObject({ text: 'also', deleted: false, replyTo: quote });
      await cb.expectNone('message.updated', 200);
      const all = await history(b, channelId);
      expect(all.find((m) => m.seq === 2)).toEqual(live[1]);
      expect(all.find((m) => m.seq === 3).replyTo).toBeUndefined();
      expect(JSON.stringify(all)).not.toContain('secret plan');
      expect(await conversation(b, channelId)).toMatchObject({ headSeq: 5, headRev: 9 });
      // A client that had everything up to rev 6 gets the three changes on resume.
      cb.send('sync', { channels: { [channelId]: { seq: 5, rev: 6 } }, ref: 'q' });
      const r = await cb.next('sync.result', (d) => d.ref === 'q');
      expect(r.changes).toEqual([tomb, live[1], live[2]]);
      // Deleting it again changes nothing, the replies included.
      expect((await del(a, channelId, 1).expect(200)).body.message.rev).toBe(7);
      await cb.expectNone('message.updated', 200);
    });

    it('mentions name members only; mentionCount counts unread mentions, exact after edits, deletes and reads', async () => {
      const [a, b, c, outsider] = [await user(), await user(), await user(), await user()];
      const channelId = await createChannel(t, a, [b, c]);
      const m1 = await send(a, channelId, `hi @${b.username.toUpperCase()} and @${outsider.username}, mail me at x@${c.username}`);
      expect(m1.mentions).toEqual([{ id: b.id, username: b.username }]);
      await send(a, channelId, `@${b.username}. @${c.username}!`);
      await send(a, channelId, 'nobody');
      expect(await conversation(b, channelId)).toMatchObject({ unreadCount: 3, mentionCount: 2 });
      expect(await conversation(c, channelId)).toMatchObject({ mentionCount: 1 });
      expect(await conversation(a, channelId)).toMatchObject({ mentionCount: 0 });
      // An edit that takes a mention away, and one that adds one.
      await edit(a, channelId, 1, 'hi all').expect(200);
      await edit(a, channelId, 3, `now @${c.username}`).expect(200);
      expect(await conversation(b, channelId)).toMatchObject({ mentionCount: 1 });
      expect(await conversation(c, channelId)).toMatchObject({ mentionCount: 2 });
      await del(a, channelId, 2).expect(200);
      expect(await conversation(b, channelId)).toMatchObject({ mentionCount: 0, unreadCount: 2 });
      expect(await conversation(c, channelId)).toMatchObject({ mentionCount: 1 });
      await t.http().post(`/channels/${channelId}/read`).set(c.auth).send({ seq: 3 }).expect(200);
      expect(await conversation(c, channelId)).toMatchObject({ mentionCount: 0, unreadCount: 0 });
      // A fresh load of the channel (the session of a new connection) agrees.
      const { ready } = await connect(b);
      expect(ready.conversations.find((x: any) => x.channelId === channelId)).toMatchObject({ mentionCount: 0, unreadCount: 2 });
    });

    it('a mention reaches the mentioned member live in conversation.update', async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      const { client: cb } = await connect(b);
      await send(a, channelId, `ping @${b.username}`);
      expect((await cb.next('conversation.update', (d) => d.conversation.channelId === channelId)).conversation).toMatchObject({ mentionCount: 1, unreadCount: 1 });
    });
  });

  describe('resume by {seq, rev}', () => {
    it('returns new messages and the current state of changed ones, changes first, paged; a bare seq keeps the v1 answer', async () => {
      const [a, b] = [await user(), await user()];
      const channelId = await createChannel(t, a, [b]);
      for (let i = 1; i <= 5; i++) await send(a, channelId, `m${i}`);
      const { client } = await connect(b);
      // b has 1..5 at rev 5; then while it is "away": edits, a delete, a reaction, new messages.
      await edit(a, channelId, 2, 'm2 edited').expect(200); // rev 6
      await del(a, channelId, 3).expect(200); // rev 7
      await react(b, channelId, 1, '👍').expect(200); // rev 8
      await edit(a, channelId, 2, 'm2 edited twice').expect(200); // rev 9
      await send(a, channelId, 'm6'); // rev 10
      client.send('sync', { channels: { [channelId]: { seq: 5, rev: 5 } }, limit: 2, ref: 's1' });
      const p1 = await client.next('sync.result', (d) => d.ref === 's1');
      expect(p1).toMatchObject({ channelId, messages: [], hasMore: true, headSeq: 6, headRev: 10 });
      expect(p1.changes.map((m: any) => [m.seq, m.rev])).toEqual([[3, 7], [1, 8]]);
      client.send('sync', { channels: { [channelId]: { seq: 5, rev: 8 } }, limit: 2, ref: 's2' });
      const p2 = await client.next('sync.result', (d) => d.ref === 's2');
      expect(p2.changes.map((m: any) => [m.seq, m.rev, m.text])).toEqual([[2, 9, 'm2 edited twice']]);
      expect(p2.messages.map((m: any) => m.seq)).toEqual([6]);
      expect(p2.hasMore).toBe(false);
      client.send('sync', { channels: { [channelId]: 4 }, ref: 'v1' });
      const v1 = await client.next('sync.result', (d) => d.ref === 'v1');
      expect(v1.changes).toBeUndefined();
      expect(v1.headRev).toBeUndefined();
      expect(v1.messages.map((m: any) => m.seq)).toEqual([5, 6]);
      for (const bad of [{ seq: -1 }, { rev: 2 }, { seq: 1, rev: 'x' }, { seq: 1, rev: 1, extra: 1 }, [1]]) {
        client.send('sync', { channels: { [channelId]: bad }, ref: 'bad' });
        expect(await client.next('error', (d) => d.ref === 'bad')).toMatchObject({ code: 'invalid_payload' });
      }
    });
  });

  describe('search', () => {
    const search = (u: TestUser, q: Record<string, string | number>) => t.http().get('/search/messages').query(q).set(u.auth);

    it('finds words in the caller\'s channels only, newest first, paged; edits re-indexed, deletes gone', async () => {
      const [a, b, c] = [await user(), await user(), await user()];
      const shared = await createChannel(t, a, [b]);
      const priv = await createChannel(t, c, [], 'private');
      const word = `zq${Math.random().toString(36).slice(2, 8)}`;
      await send(a, shared, `first ${word} here`);
      await send(b, shared, `second ${word.toUpperCase()}!`);
      await send(a, shared, `third (${word}) done`);
      await send(c, priv, `secret ${word}`);
      const p1 = (await search(a, { q: word, limit: 2 }).expect(200)).body;
      expect(p1.hits.map((h: any) => h.message.seq)).toEqual([3, 2]);
      expect(p1.hits[0].message.channelId).toBe(shared);
      const p2 = (await search(a, { q: word, limit: 2, before: p1.nextCursor }).expect(200)).body;
      expect(p2).toMatchObject({ nextCursor: null });
      expect(p2.hits.map((h: any) => h.message.seq)).toEqual([1]);
      // Prefixes, several words (all must match), diacritics and punctuation are separators.
      expect((await search(a, { q: `${word.slice(0, 5)} third` }).expect(200)).body.hits.map((h: any) => h.message.seq)).toEqual([3]);
      expect((await search(c, { q: word }).expect(200)).body.hits.map((h: any) => h.message.channelId)).toEqual([priv]);
      // Edits are re-indexed, deletes leave.
      await edit(a, shared, 1, 'first nothing here').expect(200);
      await del(b, shared, 2).expect(200);
      expect((await search(b, { q: word }).expect(200)).body.hits.map((h: any) => h.message.seq)).toEqual([3]);
      expect((await search(b, { q: 'nothing' }).expect(200)).body.hits.map((h: any) => h.message.seq)).toContain(1);
      expect((await search(b, { q: word, channelId: shared }).expect(200)).body.hits).toHaveLength(1);
      // A channel left is not searched any more; a private channel one is not in is refused by id.
      await t.http().post(`/channels/${shared}/leave`).set(b.auth).expect(204);
      expect((await search(b, { q: word }).expect(200)).body.hits).toEqual([]);
      expect((await search(a, { q: word, channelId: priv }).expect(404)).body.code).toBe('not_found');
    });

    it('finds a message sent a moment ago, in its edited state, even before the background indexing ran', async () => {
      const a = await user();
      const channelId = await createChannel(t, a);
      const w = `fresh${Math.random().toString(36).slice(2, 8)}`;
      await send(a, channelId, `old${w} words`);
      await edit(a, channelId, 1, `new${w} words`).expect(200);
      expect((await search(a, { q: `old${w}` }).expect(200)).body.hits).toEqual([]);
      expect((await search(a, { q: `new${w}` }).expect(200)).body.hits.map((h: any) => h.message.seq)).toEqual([1]);
      await edit(a, channelId, 1, `third${w}`).expect(200); // indexed now: the trigger keeps it in step
      expect((await search(a, { q: `new${w}` }).expect(200)).body.hits).toEqual([]);
      expect((await search(a, { q: `third${w}` }).expect(200)).body.hits).toHaveLength(1);
    });

    it('refuses queries without a word and bad cursors (400); punctuation and injection attempts never fail', async () => {
      const a = await user();
      const channelId = await createChannel(t, a);
      await send(a, channelId, 'robert tables');
      for (const q of ['"', '((', '*', '-', '!!', ' ', '\u00a0']) expect((await search(a, { q }).expect(400)).body.code).toBe('invalid_payload');
      for (const q of ['robert"); DROP TABLE messages; --', "robert' OR 1=1", 'robert*', 'robert:*', 'robert & !tables', 'AND OR NOT robert', '^robert', 'robert NEAR tables']) {
        expect((await search(a, { q }).expect(200)).body.hits.length).toBeGreaterThanOrEqual(0);
      }
      expect((await search(a, { q: 'robert', before: 'not a cursor' }).expect(400)).body.code).toBe('invalid_payload');
      expect((await search(a, { q: 'robert', limit: 0 }).expect(400)).body.code).toBe('invalid_payload');
      expect((await search(a, { q: 'x'.repeat(201) }).expect(400)).body.code).toBe('invalid_payload');
      await t.http().get('/search/messages').query({ q: 'robert' }).expect(401);
    });
  });
});
