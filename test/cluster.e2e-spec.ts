import { Cluster, eventually, PRESENCE_GRACE_MS, PRESENCE_TTL_MS, received, seqs, sleep, StoredMessage, syncFrom } from './helpers/cluster.js';
import { api, ServerProcess } from './helpers/server-process.js';
import { Frame, TestClient } from './helpers/ws-client.js';

/**
 * Several instances of the built server (`node dist/main.js`) on one PostgreSQL database and one
 * Redis: the section "Several instances (PostgreSQL + Redis)" of the design. A client may connect
 * to any instance, and every guarantee of the protocol holds across instances: order per
 * connection, every connection of every member, exactly-once send, exact personal unread counts
 * and read markers, typing, presence, membership events; and the cluster survives losing an
 * instance (kill -9, SIGTERM) or Redis.
 *
 * The instances are called A, B and C. Each test uses users and channels of its own; the tests
 * that break something (an instance, Redis) get a cluster of their own.
 */
const ON_POSTGRES = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '');
if (!ON_POSTGRES) {
  process.stderr.write('cluster.e2e-spec.ts skipped: several instances need PostgreSQL (set DATABASE_URL=postgres://...)\n');
}
const describeCluster = ON_POSTGRES ? describe : describe.skip;

/** The slack a timing bound gets on a slow, shared 2-core machine. */
const SLACK_MS = 3000;

type Data = Frame['data'];

/** Waits for the `message.new` of `seq` in `channelId` on one connection. */
const waitForSeq = (client: TestClient, channelId: string, seq: number, timeoutMs = 10000) =>
  client.next('message.new', (d) => d.message.channelId === channelId && d.message.seq === seq, timeoutMs);

/** The `message.ack`s a connection received, by clientMsgId. */
const acksOf = (client: TestClient): Map<string, Data> =>
  new Map(client.log.filter((f) => f.event === 'message.ack').map((f) => [f.data.clientMsgId as string, f.data]));

/** Pipelines `n` sends (clientMsgIds `<prefix>-1` ... `<prefix>-n`); returns the ids. */
function sendMany(client: TestClient, channelId: string, prefix: string, n: number): string[] {
  const ids = seqs(n).map((i) => `${prefix}-${i}`);
  for (const id of ids) client.send('message.send', { channelId, text: `text of ${id}`, clientMsgId: id });
  return ids;
}

/** The highest seq a client holds with no hole before it (what it would resume from). */
function lastContiguous(messages: StoredMessage[]): number {
  let last = 0;
  for (const m of messages) if (m.seq === last + 1) last = m.seq;
  return last;
}

/** The answer to the frame sent with `ref`: 'ack' for a message.ack, else the error's code. */
const answerTo = (client: TestClient, ref: string): Promise<string> =>
  Promise.race([
    client.next('message.ack', (d) => d.ref === ref).then(() => 'ack'),
    client.next('error', (d) => d.ref === ref).then((d) => d.code as string),
  ]);

const ids = (messages: StoredMessage[]) => messages.map((m) => m.id);
const ready = (node: ServerProcess) => api(node.baseUrl, 'GET', '/health/ready');

describeCluster('several instances on one PostgreSQL database and one Redis', () => {
  let cluster: Cluster;
  let A: ServerProcess;
  let B: ServerProcess;
  let C: ServerProcess;

  /** A test whose failure message carries every instance's output. */
  const clusterIt = (name: string, body: () => Promise<void>, timeoutMs?: number) => it(name, () => cluster.explain(body), timeoutMs);

  beforeAll(async () => {
    cluster = await Cluster.start(3);
    [A, B, C] = cluster.nodes;
  }, 180000);
  afterEach(() => cluster?.closeClients());
  afterAll(() => cluster?.stop());

  describe('start-up', () => {
    clusterIt('three instances started at the same moment on an empty schema all become ready, and each migration ran once', async () => {
      for (const node of cluster.nodes) {
        expect(await ready(node)).toMatchObject({ status: 200, body: { status: 'ok', checks: { database: 'ok', redis: 'ok' } } });
      }
      const rows = await cluster.sql<{ name: string }>(`SELECT name FROM "${cluster.schema}"."migrations"`);
      expect(rows.length).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
    });
  });

  describe('messages', () => {
    clusterIt("delivers a message sent on A to every connection of every member on B and C, the sender's other device too, in seq order, after the ack", async () => {
      const [alice, bob, carol, dave] = await cluster.users(4);
      const channelId = await cluster.channel(alice, [bob, carol]);
      const aliceA = await cluster.connect(alice, A);
      const aliceC = await cluster.connect(alice, C); // the sender's other device, elsewhere
      const bobB = await cluster.connect(bob, B);
      const bobC = await cluster.connect(bob, C); // one user on two instances
      const carolB = await cluster.connect(carol, B);
      const daveC = await cluster.connect(dave, C); // not a member
      const members = [aliceA, aliceC, bobB, bobC, carolB];

      sendMany(aliceA, channelId, 'fan', 5);
      for (const c of members) await waitForSeq(c, channelId, 5);

      const acks = [...acksOf(aliceA).values()].sort((x, y) => x.message.seq - y.message.seq);
      expect(acks.map((a) => a.message.seq)).toEqual(seqs(5));
      expect(acks.every((a) => a.duplicate === false)).toBe(true);
      for (const c of members) expect(received(c, channelId)).toEqual(acks.map((a) => a.message));
      // On the sending connection, each message's ack comes before its message.new.
      for (const seq of seqs(5)) {
        const ackAt = aliceA.log.findIndex((f) => f.event === 'message.ack' && f.data.message.seq === seq);
        const newAt = aliceA.log.findIndex((f) => f.event === 'message.new' && f.data.message.seq === seq);
        expect(ackAt).toBeLessThan(newAt);
      }
      await daveC.expectNone('message.new', 300);
    });

    clusterIt('three senders on three instances, 100 pipelined sends each into one channel: every connection gets seqs 1..300 once and in order, and history is gap-free', async () => {
      const [s1, s2, s3, reader] = await cluster.users(4);
      const channelId = await cluster.channel(s1, [s2, s3, reader]);
      const senders = [await cluster.connect(s1, A), await cluster.connect(s2, B), await cluster.connect(s3, C)];
      const readers = [await cluster.connect(reader, A), await cluster.connect(reader, B), await cluster.connect(reader, C)];
      const everyone = [...senders, ...readers];
      const PER_SENDER = 100;
      const TOTAL = 3 * PER_SENDER;

      const sent = senders.map((c, k) => sendMany(c, channelId, `s${k}`, PER_SENDER));
      for (const c of everyone) await waitForSeq(c, channelId, TOTAL, 60000);
      await eventually('every send acknowledged', () => senders.every((c) => acksOf(c).size === PER_SENDER), 30000);

      const stored = await cluster.history(reader, channelId, B);
      expect(stored.map((m) => m.seq)).toEqual(seqs(TOTAL));
      const byClientId = new Map(stored.map((m) => [m.clientMsgId, m]));
      expect(byClientId.size).toBe(TOTAL);
      senders.forEach((c, k) => {
        for (const id of sent[k]) expect(acksOf(c).get(id)!.message).toEqual(byClientId.get(id));
      });
      await sleep(300); // room for a late duplicate to show up
      for (const c of everyone) expect(ids(received(c, channelId))).toEqual(ids(stored));
    }, 180000);

    clusterIt('stores one message when the same clientMsgId reaches A and B at the same time: both acks carry it, receivers see it once', async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice, [bob]);
      const aliceA = await cluster.connect(alice, A);
      const aliceB = await cluster.connect(alice, B);
      const bobC = await cluster.connect(bob, C);
      const ROUNDS = 20;

      const sentIds = seqs(ROUNDS).map((i) => `twice-${i}`);
      for (const clientMsgId of sentIds) {
        const data = { channelId, text: `sent twice: ${clientMsgId}`, clientMsgId };
        aliceA.send('message.send', data);
        aliceB.send('message.send', data);
      }
      await eventually('both instances acknowledged every send', () => acksOf(aliceA).size === ROUNDS && acksOf(aliceB).size === ROUNDS, 30000);

      const stored = await cluster.history(alice, channelId);
      expect(stored.map((m) => m.seq)).toEqual(seqs(ROUNDS));
      expect(stored.map((m) => m.clientMsgId).sort()).toEqual([...sentIds].sort());
      const byClientId = new Map(stored.map((m) => [m.clientMsgId, m]));
      for (const id of sentIds) {
        const [onA, onB] = [acksOf(aliceA).get(id)!, acksOf(aliceB).get(id)!];
        expect(onA.message).toEqual(byClientId.get(id));
        expect(onB.message).toEqual(byClientId.get(id));
        expect([onA.duplicate, onB.duplicate].sort()).toEqual([false, true]);
      }
      for (const c of [aliceA, aliceB, bobC]) await waitForSeq(c, channelId, ROUNDS);
      await sleep(500); // room for a second fan-out to show up
      for (const c of [aliceA, aliceB, bobC]) expect(ids(received(c, channelId))).toEqual(ids(stored));
    });
  });

  describe('messages that change (v1.1)', () => {
    clusterIt('edits, deletes and reactions made on three instances at once reach every connection in rev order, and each ends with the stored state', async () => {
      const [alice, bob, carol] = await cluster.users(3);
      const channelId = await cluster.channel(alice, [bob, carol]);
      const aliceA = await cluster.connect(alice, A);
      const bobB = await cluster.connect(bob, B);
      const carolC = await cluster.connect(carol, C);
      const everyone = [aliceA, bobB, carolC];
      sendMany(aliceA, channelId, 'chg', 10);
      for (const c of everyone) await waitForSeq(c, channelId, 10);
      // Two replies to message 6, whose delete below empties their quotes (two more changes).
      for (const n of [11, 12]) {
        expect((await api(B.baseUrl, 'POST', `/channels/${channelId}/messages`, { text: `on 6 (${n})`, clientMsgId: `reply-${n}`, replyToSeq: 6 }, bob.token)).status).toBe(201);
      }
      for (const c of everyone) await waitForSeq(c, channelId, 12);

      for (const seq of seqs(5)) aliceA.send('message.edit', { channelId, seq, text: `edited ${seq}`, ref: `e${seq}` });
      for (const seq of seqs(10)) bobB.send('reaction.add', { channelId, seq, emoji: '👍', ref: `b${seq}` });
      for (const seq of seqs(10)) carolC.send('reaction.add', { channelId, seq, emoji: ':tada:', ref: `c${seq}` });
      const deletes = await Promise.all([6, 7].map((seq) => api(C.baseUrl, 'DELETE', `/channels/${channelId}/messages/${seq}`, undefined, alice.token)));
      expect(deletes.map((r) => r.status)).toEqual([200, 200]);
      // Every change answered (a reaction that came after its message's delete: conflict), so all are committed.
      const answered = (c: TestClient, ref: string) => c.log.some((f) => (f.event === 'message.updated' || f.event === 'error') && f.data.ref === ref);
      await eventually('every change answered', () => seqs(10).every((seq) => answered(bobB, `b${seq}`) && answered(carolC, `c${seq}`)) && seqs(5).every((seq) => answered(aliceA, `e${seq}`)), 30000);
      const stored = await cluster.history(alice, channelId);
      const headRev = Math.max(...stored.map((m) => (m as Data).rev as number));
      const changesOf = (c: TestClient) => c.log.filter((f) => (f.event === 'message.new' || f.event === 'message.updated') && f.data.message.channelId === channelId).map((f) => f.data.message);
      for (const c of everyone) {
        await eventually('every change delivered', () => Math.max(...changesOf(c).map((m) => m.rev)) === headRev, 15000);
        const revs = changesOf(c).map((m) => m.rev);
        expect(revs).toEqual([...revs].sort((x, y) => x - y)); // rev order on every connection
        expect(new Set(revs).size).toBe(revs.length); // and each change once
        const latest = new Map<number, Data>();
        for (const m of changesOf(c)) latest.set(m.seq, m);
        expect(seqs(12).map((seq) => latest.get(seq))).toEqual(stored);
      }
      // The askers got their answers with their refs, in the same stream.
      for (const seq of seqs(5)) expect(aliceA.log.some((f) => f.event === 'message.updated' && f.data.ref === `e${seq}`)).toBe(true);
      expect(stored.filter((m) => (m as Data).deleted).map((m) => m.seq)).toEqual([6, 7]);
      expect(stored.slice(10).map((m) => (m as Data).replyTo)).toEqual([11, 12].map(() => ({ seq: 6, sender: { id: alice.id, username: alice.username }, text: '', deleted: true })));
    }, 60000);

    clusterIt('unread and mention counts stay exact on every instance after mentions, edits and deletes made elsewhere', async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice, [bob]);
      const bobB = await cluster.connect(bob, B);
      const bobC = await cluster.connect(bob, C);
      const send = (text: string) => api(A.baseUrl, 'POST', `/channels/${channelId}/messages`, { text, clientMsgId: `${text}-${Math.random()}` }, alice.token);
      await send(`hi @${bob.username}`);
      await send('plain');
      await send(`again @${bob.username}`);
      const counts = async (node: ServerProcess) => {
        const c = (await api(node.baseUrl, 'GET', '/conversations', undefined, bob.token)).body.find((x: Data) => x.channelId === channelId);
        return [c.unreadCount, c.mentionCount];
      };
      for (const node of [A, B, C]) await eventually('counts on every instance', async () => JSON.stringify(await counts(node)) === '[3,2]');
      expect((await bobB.next('conversation.update', (d) => d.conversation.channelId === channelId && d.conversation.mentionCount === 2)).conversation.unreadCount).toBe(3);
      await api(C.baseUrl, 'PATCH', `/channels/${channelId}/messages/1`, { text: 'hi all' }, alice.token);
      await api(B.baseUrl, 'DELETE', `/channels/${channelId}/messages/2`, undefined, alice.token);
      for (const node of [A, B, C]) await eventually('counts after the edit and the delete', async () => JSON.stringify(await counts(node)) === '[2,1]');
      await eventually('bob on C saw the update', () => bobC.log.some((f) => f.event === 'conversation.update' && f.data.conversation.channelId === channelId && f.data.conversation.mentionCount === 1 && f.data.conversation.unreadCount === 2));
    }, 60000);
  });

  describe('read markers and unread counts', () => {
    clusterIt("a mute on A reaches the member's connections on B and C, and every instance's list shows it", async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice, [bob]);
      const bobB = await cluster.connect(bob, B);
      const bobC = await cluster.connect(bob, C);
      const mutedOn = async (node: ServerProcess) =>
        (await api(node.baseUrl, 'GET', '/conversations', undefined, bob.token)).body.find((x: Data) => x.channelId === channelId).muted;
      for (const node of [A, B, C]) expect(await mutedOn(node)).toBe(false); // each instance has the channel cached
      expect((await api(A.baseUrl, 'POST', `/channels/${channelId}/mute`, undefined, bob.token)).status).toBe(200);
      for (const c of [bobB, bobC]) expect((await c.next('conversation.update', (d) => d.conversation.channelId === channelId)).conversation.muted).toBe(true);
      for (const node of [A, B, C]) await eventually('muted on every instance', async () => (await mutedOn(node)) === true);
      expect((await api(C.baseUrl, 'DELETE', `/channels/${channelId}/mute`, undefined, bob.token)).status).toBe(200);
      await bobB.next('conversation.update', (d) => d.conversation.channelId === channelId && d.conversation.muted === false);
      for (const node of [A, B, C]) await eventually('unmuted on every instance', async () => (await mutedOn(node)) === false);
    }, 60000);

    clusterIt("a read on B updates the reader's connection on C, and unread counts stay exact whichever instance computes them", async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice, [bob]);
      const aliceA = await cluster.connect(alice, A);
      const bobB = await cluster.connect(bob, B);
      const bobC = await cluster.connect(bob, C);
      const ofChannel = (more: (c: Data) => boolean) => (d: Data) => d.conversation.channelId === channelId && more(d.conversation);

      sendMany(aliceA, channelId, 'unread', 4);
      for (const c of [bobB, bobC]) await waitForSeq(c, channelId, 4);

      bobB.send('read', { channelId, seq: 3, ref: 'read-3' });
      expect((await bobB.next('conversation.update', (d) => d.ref === 'read-3')).conversation).toMatchObject({ channelId, headSeq: 4, lastReadSeq: 3, unreadCount: 1 });
      expect((await bobC.next('conversation.update', ofChannel((c) => c.lastReadSeq === 3))).conversation).toMatchObject({ headSeq: 4, unreadCount: 1 });

      // A message sent on A counts from the marker bob moved on B, on every instance.
      aliceA.send('message.send', { channelId, text: 'fifth', clientMsgId: 'unread-5' });
      for (const c of [bobB, bobC]) {
        expect((await c.next('conversation.update', ofChannel((cv) => cv.headSeq === 5))).conversation).toMatchObject({ lastReadSeq: 3, unreadCount: 2 });
      }
      expect((await aliceA.next('conversation.update', ofChannel((cv) => cv.headSeq === 5))).conversation).toMatchObject({ lastReadSeq: 5, unreadCount: 0 });

      // A stale read on C does not move the marker back.
      bobC.send('read', { channelId, seq: 2, ref: 'read-2' });
      expect((await bobC.next('conversation.update', (d) => d.ref === 'read-2')).conversation).toMatchObject({ lastReadSeq: 3, unreadCount: 2 });

      // And HTTP on A, where bob never was, agrees.
      const list = await api(A.baseUrl, 'GET', '/conversations', undefined, bob.token);
      expect(list.body.find((c: Data) => c.channelId === channelId)).toMatchObject({ headSeq: 5, lastReadSeq: 3, unreadCount: 2 });
    });
  });

  describe('membership', () => {
    clusterIt("channel.join on B tells the members on A, reaches the joiner's device on C, and the joiner then gets messages sent on A", async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice);
      const aliceA = await cluster.connect(alice, A);
      aliceA.send('message.send', { channelId, text: 'before bob', clientMsgId: 'join-1' }); // A now knows the members
      await aliceA.next('message.ack');
      const bobB = await cluster.connect(bob, B);
      const bobC = await cluster.connect(bob, C);

      bobB.send('channel.join', { channelId, ref: 'join' });
      expect(await bobB.next('channel.joined')).toMatchObject({ ref: 'join', conversation: { channelId, kind: 'channel', headSeq: 1, unreadCount: 0 } });
      expect(await aliceA.next('member.joined')).toEqual({ channelId, user: { id: bob.id, username: bob.username } });
      expect((await bobC.next('conversation.update', (d) => d.conversation.channelId === channelId)).conversation).toMatchObject({ channelId, unreadCount: 0 });

      aliceA.send('message.send', { channelId, text: 'welcome bob', clientMsgId: 'join-2' });
      const welcome = await aliceA.next('message.ack', (d) => d.clientMsgId === 'join-2');
      for (const c of [bobB, bobC]) expect((await waitForSeq(c, channelId, 2)).message).toEqual(welcome.message);
      bobC.send('message.send', { channelId, text: 'thanks', clientMsgId: 'join-3' });
      const thanks = await bobC.next('message.ack');
      expect((await waitForSeq(aliceA, channelId, 3)).message).toEqual(thanks.message);
    });

    clusterIt('channel.leave on B: member.left on A, channel.left on the leaver\'s device on C, and the leaver is refused at once on every instance', async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice, [bob]);
      const aliceA = await cluster.connect(alice, A);
      const bobB = await cluster.connect(bob, B);
      const bobC = await cluster.connect(bob, C);
      // bob posts on C and, over HTTP, on A first, so both instances know him as a member.
      bobC.send('message.send', { channelId, text: 'from C', clientMsgId: 'leave-1' });
      await bobC.next('message.ack');
      expect((await api(A.baseUrl, 'POST', `/channels/${channelId}/messages`, { text: 'from A', clientMsgId: 'leave-2' }, bob.token)).status).toBe(201);
      await waitForSeq(aliceA, channelId, 2);

      bobB.send('channel.leave', { channelId, ref: 'leave' });
      expect(await bobB.next('channel.left')).toEqual({ channelId, ref: 'leave' });
      // Right away, on the other instances:
      bobC.send('message.send', { channelId, text: 'still here?', clientMsgId: 'leave-3', ref: 'after-leave' });
      const overHttp = await api(A.baseUrl, 'POST', `/channels/${channelId}/messages`, { text: 'still here?', clientMsgId: 'leave-4' }, bob.token);
      expect(await answerTo(bobC, 'after-leave')).toBe('forbidden');
      expect(bobC.log.find((f) => f.event === 'error' && f.data.ref === 'after-leave')?.data).toMatchObject({ clientMsgId: 'leave-3' });
      expect(overHttp).toMatchObject({ status: 403, body: { code: 'forbidden' } });

      expect(await aliceA.next('member.left')).toEqual({ channelId, user: { id: bob.id, username: bob.username } });
      expect(await bobC.next('channel.left')).toMatchObject({ channelId });
      aliceA.send('message.send', { channelId, text: 'bob has left', clientMsgId: 'leave-5' });
      expect((await aliceA.next('message.ack')).message.seq).toBe(3);
      await bobB.expectNone('message.new', 500, (d) => d.message.seq === 3);
      await bobC.expectNone('message.new', 0, (d) => d.message.seq === 3);
      expect((await cluster.history(alice, channelId)).map((m) => m.clientMsgId)).toEqual(['leave-1', 'leave-2', 'leave-5']);
    });

    clusterIt('membership changed on B holds at once on C: a send right after channel.joined is accepted, right after channel.left refused, every time', async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice);
      const bobB = await cluster.connect(bob, B);
      const bobC = await cluster.connect(bob, C);
      const sendOnC = (ref: string) => {
        bobC.send('message.send', { channelId, text: `sent on C: ${ref}`, clientMsgId: ref, ref });
        return answerTo(bobC, ref);
      };
      const CYCLES = 30;
      const answers: string[] = [];
      for (let i = 1; i <= CYCLES; i++) {
        bobB.send('channel.join', { channelId, ref: `join-${i}` });
        await bobB.next('channel.joined', (d) => d.ref === `join-${i}`);
        answers.push(`after join: ${await sendOnC(`in-${i}`)}`);
        bobB.send('channel.leave', { channelId, ref: `leave-${i}` });
        await bobB.next('channel.left', (d) => d.ref === `leave-${i}`);
        answers.push(`after leave: ${await sendOnC(`out-${i}`)}`);
      }
      expect(answers).toEqual(seqs(CYCLES).flatMap(() => ['after join: ack', 'after leave: forbidden']));
      expect((await cluster.history(alice, channelId)).map((m) => m.clientMsgId)).toEqual(seqs(CYCLES).map((i) => `in-${i}`));
    });
  });

  describe('direct messages', () => {
    clusterIt('a DM made by the first message on A: the peer on B gets the new conversation, then the message, and the reply finds the same DM', async () => {
      const [alice, bob] = await cluster.users(2);
      const aliceA = await cluster.connect(alice, A);
      const aliceC = await cluster.connect(alice, C);
      const bobB = await cluster.connect(bob, B);

      aliceA.send('message.send', { to: bob.username, text: 'hello from A', clientMsgId: 'dm-1' });
      const ack = await aliceA.next('message.ack');
      const dmId = ack.message.channelId;
      const forDm = (d: Data) => d.conversation.channelId === dmId;

      // A request for bob until he posts in it: alice's presence does not show through it yet.
      expect((await bobB.next('conversation.update', forDm)).conversation).toMatchObject({
        kind: 'dm',
        name: alice.username,
        accepted: false,
        peer: { id: alice.id, username: alice.username, status: 'offline' },
      });
      expect((await waitForSeq(bobB, dmId, 1)).message).toEqual(ack.message);
      expect((await aliceC.next('conversation.update', forDm)).conversation).toMatchObject({ kind: 'dm', name: bob.username, peer: { id: bob.id } });
      expect((await waitForSeq(aliceC, dmId, 1)).message).toEqual(ack.message);
      for (const c of [bobB, aliceC]) {
        const firstOfDm = c.log.find((f) => (f.event === 'conversation.update' && forDm(f.data)) || (f.event === 'message.new' && f.data.message.channelId === dmId));
        expect(firstOfDm?.event).toBe('conversation.update');
      }

      bobB.send('message.send', { to: alice.username, text: 'hi from B', clientMsgId: 'dm-2' });
      const reply = await bobB.next('message.ack');
      expect(reply.message).toMatchObject({ channelId: dmId, seq: 2 });
      expect((await waitForSeq(aliceA, dmId, 2)).message).toEqual(reply.message);
      // The reply accepted it (on B): A, which rendered it, shows alice that bob is online.
      expect(await aliceA.next('presence.update', (d) => d.user.id === bob.id)).toMatchObject({ status: 'online' });
    });
  });

  describe('typing', () => {
    clusterIt('sends typing across instances, at most one per user and channel per second cluster-wide', async () => {
      const [alice, bob, carol] = await cluster.users(3);
      const channelId = await cluster.channel(alice, [bob, carol]);
      const aliceA = await cluster.connect(alice, A);
      const aliceB = await cluster.connect(alice, B);
      const bobC = await cluster.connect(bob, C);
      const carolB = await cluster.connect(carol, B);
      const others = [bobC, carolB];
      const typing = { channelId, user: { id: alice.id, username: alice.username } };

      const start = Date.now();
      aliceA.send('typing', { channelId });
      aliceB.send('typing', { channelId }); // same user, other instance, same second
      for (const c of others) expect(await c.next('typing')).toEqual(typing);
      const firstSeenAt = Date.now();
      await sleep(start + 900 - Date.now());
      for (const c of others) expect(c.take('typing')).toEqual([]);
      for (const c of [aliceA, aliceB]) expect(c.log.filter((f) => f.event === 'typing')).toEqual([]);

      // Over a second after the first went out, it goes out again.
      await sleep(firstSeenAt + 1100 - Date.now());
      aliceB.send('typing', { channelId });
      for (const c of others) expect(await c.next('typing')).toEqual(typing);
    });
  });

  describe('presence', () => {
    clusterIt('announces presence across instances: online at the first connection anywhere, offline PRESENCE_GRACE_MS after the last one closes', async () => {
      const [alice, bob] = await cluster.users(2);
      await cluster.acceptedDm(alice, bob);
      const aliceA = await cluster.connect(alice, A);
      const ofBob = (d: Data) => d.user.id === bob.id;

      const bobB = await cluster.connect(bob, B);
      expect(await aliceA.next('presence.update', ofBob)).toMatchObject({ user: { id: bob.id, username: bob.username }, status: 'online' });
      const bobC = await cluster.connect(bob, C);
      await aliceA.expectNone('presence.update', 300, ofBob);
      await bobB.close();
      await aliceA.expectNone('presence.update', PRESENCE_GRACE_MS + 700, ofBob); // still connected on C
      await bobC.close();
      const closedAt = Date.now();
      expect(await aliceA.next('presence.update', ofBob, PRESENCE_GRACE_MS + SLACK_MS)).toMatchObject({ status: 'offline', lastSeenAt: expect.any(String) });
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(PRESENCE_GRACE_MS - 100);
    });

    clusterIt("shows a peer's cluster-wide status in conversation lists on every instance", async () => {
      const [alice, bob] = await cluster.users(2);
      const dmId = await cluster.acceptedDm(alice, bob);
      const aliceA = await cluster.connect(alice, A);
      const peerStatusOn = async (node: ServerProcess) =>
        (await api(node.baseUrl, 'GET', '/conversations', undefined, alice.token)).body.find((c: Data) => c.channelId === dmId)?.peer?.status;

      const bobB = await cluster.connect(bob, B);
      await aliceA.next('presence.update', (d) => d.user.id === bob.id && d.status === 'online');
      expect(await peerStatusOn(C)).toBe('online'); // C holds no connection of bob's
      const { ready: onC } = await cluster.connectWithReady(alice, C);
      expect(onC.conversations.find((c: Data) => c.channelId === dmId).peer.status).toBe('online');

      await bobB.close();
      await aliceA.next('presence.update', (d) => d.user.id === bob.id && d.status === 'offline', PRESENCE_GRACE_MS + SLACK_MS);
      expect(await peerStatusOn(C)).toBe('offline');
      expect(await peerStatusOn(A)).toBe('offline');
    });
  });

  describe('metrics', () => {
    clusterIt("counts the bus in /metrics: published on the sender's instance, received (with lag) on the others, refills declared", async () => {
      const [alice, bob] = await cluster.users(2);
      const channelId = await cluster.channel(alice, [bob]);
      const aliceA = await cluster.connect(alice, A);
      const receivers = [await cluster.connect(bob, B), await cluster.connect(bob, C)];
      const before = await Promise.all(cluster.nodes.map((n) => cluster.metrics(n)));

      sendMany(aliceA, channelId, 'metered', 5);
      for (const c of receivers) await waitForSeq(c, channelId, 5);

      const after = await Promise.all(cluster.nodes.map((n) => cluster.metrics(n)));
      const grew = (i: number, name: string) => (after[i].get(name) ?? 0) - (before[i].get(name) ?? 0);
      expect(grew(0, 'parley_bus_published_total')).toBeGreaterThan(0);
      for (const i of [1, 2]) {
        expect(grew(i, 'parley_bus_received_total')).toBeGreaterThan(0);
        expect(grew(i, 'parley_bus_lag_seconds_count')).toBeGreaterThan(0);
      }
      for (const m of after) expect(m.has('parley_bus_refills_total')).toBe(true);
    });
  });
});

describeCluster('several instances when an instance or Redis fails', () => {
  let cluster: Cluster;
  let A: ServerProcess;
  let B: ServerProcess;
  let C: ServerProcess;

  const clusterIt = (name: string, body: () => Promise<void>, timeoutMs?: number) => it(name, () => cluster.explain(body), timeoutMs);

  beforeEach(async () => {
    cluster = await Cluster.start(3);
    [A, B, C] = cluster.nodes;
  }, 180000);
  afterEach(() => cluster?.stop());

  clusterIt(
    'kill -9 of an instance during a send burst: its clients resume elsewhere, nothing acknowledged is lost or stored twice, and a receiver on a surviving instance sees each message once, in order',
    async () => {
      const [alice, bob, dave] = await cluster.users(3);
      const channelId = await cluster.channel(alice, [bob, dave]);
      const bobB = await cluster.connect(bob, B); // stays connected throughout: no sync, no dedup
      const daveA = await cluster.connect(dave, A); // a receiver on the instance that dies
      const aliceA = await cluster.connect(alice, A);

      // alice sends bursts faster than A acknowledges them, until A is gone.
      const sentIds: string[] = [];
      const sending = (async () => {
        while (!aliceA.closed && sentIds.length < 3000) {
          for (let k = 0; k < 20; k++) {
            const id = `burst-${sentIds.length + 1}`;
            sentIds.push(id);
            aliceA.send('message.send', { channelId, text: `text of ${id}`, clientMsgId: id });
          }
          await sleep(5);
        }
      })();
      await aliceA.next('message.ack', (d) => d.message.seq >= 200, 60000);
      await A.kill('SIGKILL');
      await Promise.all([aliceA.waitClosed(), daveA.waitClosed(), sending]);
      const TOTAL = sentIds.length;

      // alice reconnects to C, re-sends every unacknowledged message with the same clientMsgId,
      // then resumes from the last seq she saw.
      const ackedOnA = acksOf(aliceA);
      const unacked = sentIds.filter((id) => !ackedOnA.has(id));
      expect(unacked.length).toBeGreaterThan(0); // the kill did land in the middle of the burst
      const aliceC = await cluster.connect(alice, C);
      for (const id of unacked) aliceC.send('message.send', { channelId, text: `text of ${id}`, clientMsgId: id });
      await eventually('every re-sent message acknowledged on C', () => acksOf(aliceC).size === unacked.length, 60000);
      const aliceSynced = await syncFrom(aliceC, channelId, lastContiguous(received(aliceA, channelId)));
      // dave reconnects to B and resumes the same way.
      const daveB = await cluster.connect(dave, B);
      const daveSynced = await syncFrom(daveB, channelId, lastContiguous(received(daveA, channelId)));

      // The database: every message once, seqs 1..TOTAL, every ack (before and after) the stored one.
      const stored = await cluster.history(alice, channelId, B);
      expect(stored.map((m) => m.seq)).toEqual(seqs(TOTAL));
      const byClientId = new Map(stored.map((m) => [m.clientMsgId, m]));
      expect([...byClientId.keys()].sort()).toEqual([...sentIds].sort());
      for (const [id, ack] of [...ackedOnA, ...acksOf(aliceC)]) expect(ack.message).toEqual(byClientId.get(id));

      // bob, connected to B all along: each message exactly once, in order.
      await waitForSeq(bobB, channelId, TOTAL, 30000);
      await sleep(500); // room for a late duplicate
      expect(ids(received(bobB, channelId))).toEqual(ids(stored));
      expect(bobB.closed).toBeNull();

      // alice and dave, who were on A: what they saw live, plus sync, holds every message.
      for (const [before, synced, after] of [[aliceA, aliceSynced, aliceC], [daveA, daveSynced, daveB]] as const) {
        const bySeq = new Map<number, StoredMessage>();
        for (const m of [...received(before, channelId), ...synced, ...received(after, channelId)]) bySeq.set(m.seq, m);
        expect(ids([...bySeq.values()].sort((x, y) => x.seq - y.seq))).toEqual(ids(stored));
      }
    },
    180000,
  );

  clusterIt("kill -9 of an instance: its users go offline for everyone else within PRESENCE_TTL_MS, unless they are connected elsewhere", async () => {
    const [alice, bob, carol] = await cluster.users(3);
    const bobDm = await cluster.acceptedDm(alice, bob);
    const carolDm = await cluster.acceptedDm(alice, carol);
    const watchers = [await cluster.connect(alice, A), await cluster.connect(alice, C)];
    const ofUser = (user: { id: string }, status?: string) => (d: Data) => d.user.id === user.id && (status === undefined || d.status === status);

    await cluster.connect(bob, B); // bob is only on B
    await cluster.connect(carol, B);
    await cluster.connect(carol, C); // carol is on B and on C
    for (const w of watchers) {
      await w.next('presence.update', ofUser(bob, 'online'));
      await w.next('presence.update', ofUser(carol, 'online'));
    }

    const killedAt = Date.now();
    await B.kill('SIGKILL');
    const bound = PRESENCE_TTL_MS + PRESENCE_GRACE_MS + SLACK_MS;
    for (const w of watchers) {
      const left = Math.max(1, bound - (Date.now() - killedAt));
      expect(await w.next('presence.update', ofUser(bob), left)).toMatchObject({ status: 'offline', lastSeenAt: expect.any(String) });
    }

    // carol, still connected on C, never went offline (nor flapped).
    await sleep(killedAt + bound - Date.now());
    for (const w of watchers) expect(w.log.filter((f) => f.event === 'presence.update' && ofUser(carol)(f.data)).map((f) => f.data.status)).toEqual(['online']);
    const list = await api(C.baseUrl, 'GET', '/conversations', undefined, alice.token);
    const peerStatus = (dmId: string) => list.body.find((c: Data) => c.channelId === dmId)?.peer?.status;
    expect([peerStatus(bobDm), peerStatus(carolDm)]).toEqual(['offline', 'online']);
  }, 90000);

  clusterIt(
    'Redis killed and restarted during traffic: every send is acknowledged and stored, every connection ends up with every message in order without reconnecting, readiness reports Redis, and live delivery resumes',
    async () => {
      const [alice, bob, carol] = await cluster.users(3);
      const channelId = await cluster.channel(alice, [bob, carol]);
      const aliceA = await cluster.connect(alice, A);
      const bobB = await cluster.connect(bob, B);
      const carols = [await cluster.connect(carol, A), await cluster.connect(carol, B), await cluster.connect(carol, C)];
      const everyone = [aliceA, bobB, ...carols];

      // Before: live traffic through Redis.
      sendMany(aliceA, channelId, 'before', 20);
      for (const c of everyone) await waitForSeq(c, channelId, 20);

      await cluster.redis.stop();
      for (const node of cluster.nodes) {
        await eventually(`instance ${cluster.labelOf(node)} to report Redis down`, async () => (await ready(node)).status === 503, 10000, 100);
        expect(await ready(node)).toMatchObject({ status: 503, body: { code: 'unavailable', details: { checks: { redis: 'down', database: 'ok' } } } });
      }

      // During: sends on two instances are acknowledged once stored, Redis or not.
      sendMany(aliceA, channelId, 'during-a', 40);
      sendMany(bobB, channelId, 'during-b', 40);
      await eventually('every send acknowledged while Redis is down', () => acksOf(aliceA).size === 60 && acksOf(bobB).size === 40, 30000);

      await cluster.redis.restart();
      for (const node of cluster.nodes) await cluster.waitReady(node, 15000);

      // Every connection ends up with 1..100 in order, exactly once, on the same socket.
      const TOTAL = 100;
      for (const c of everyone) await waitForSeq(c, channelId, TOTAL, 30000);
      const stored = await cluster.history(alice, channelId);
      expect(stored.map((m) => m.seq)).toEqual(seqs(TOTAL));
      for (const [c, acks] of [[aliceA, acksOf(aliceA)], [bobB, acksOf(bobB)]] as const) {
        for (const ack of acks.values()) expect(ack.message).toEqual(stored[ack.message.seq - 1]);
        expect(c.closed).toBeNull();
      }
      await sleep(500); // room for a late duplicate
      for (const c of everyone) {
        expect(ids(received(c, channelId))).toEqual(ids(stored));
        expect(c.closed).toBeNull();
      }

      // Live delivery resumes: messages sent on A after the restart reach B and C within two
      // seconds, and the bus on B and C receives from Redis again.
      const receivedBefore = await Promise.all([B, C].map((n) => cluster.metric(n, 'parley_bus_received_total')));
      let seq = TOTAL;
      await eventually(
        'B and C to receive from Redis again',
        async () => {
          seq++;
          aliceA.send('message.send', { channelId, text: `after the restart ${seq}`, clientMsgId: `after-${seq}` });
          for (const c of [bobB, carols[1], carols[2]]) await waitForSeq(c, channelId, seq, 2000);
          const now = await Promise.all([B, C].map((n) => cluster.metric(n, 'parley_bus_received_total')));
          return now.every((v, i) => v > receivedBefore[i]);
        },
        15000,
        300,
      );
    },
    180000,
  );

  clusterIt(
    'instances cut from Redis pub/sub while messages flow refill what they missed: every connection gets each message once, in order, on the same socket',
    async () => {
      const [alice, bob, carol] = await cluster.users(3);
      const channelId = await cluster.channel(alice, [bob, carol]);
      const aliceA = await cluster.connect(alice, A);
      const receivers = [await cluster.connect(bob, B), await cluster.connect(carol, B), await cluster.connect(carol, C)];
      const TOTAL = 300;

      // Bursts of ten every 10 ms, so that live messages arrive while the missed ones are read back.
      const sending = (async () => {
        for (let i = 1; i <= TOTAL; i++) {
          aliceA.send('message.send', { channelId, text: `text of cut-${i}`, clientMsgId: `cut-${i}` });
          if (i % 10 === 0) await sleep(10);
        }
      })();
      await eventually('the first messages to reach B', () => received(receivers[0], channelId).length >= 20, 10000);
      // Every subscriber connection is dropped: what is published until they are back is lost for them.
      expect(await cluster.redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')).toMatch(/^:[1-9]/);
      await sending;

      for (const c of receivers) await waitForSeq(c, channelId, TOTAL, 30000);
      const stored = await cluster.history(alice, channelId);
      expect(stored.map((m) => m.seq)).toEqual(seqs(TOTAL));
      await sleep(500); // room for a late duplicate
      for (const c of [aliceA, ...receivers]) {
        expect(ids(received(c, channelId))).toEqual(ids(stored));
        expect(c.closed).toBeNull();
      }
    },
    90000,
  );

  clusterIt('SIGTERM of one instance: its clients get close 1001, the others keep serving', async () => {
    const [alice, bob, carol] = await cluster.users(3);
    const channelId = await cluster.channel(alice, [bob, carol]);
    const aliceA = await cluster.connect(alice, A);
    const aliceB = await cluster.connect(alice, B);
    const bobB = await cluster.connect(bob, B);
    const bobC = await cluster.connect(bob, C);
    const carolC = await cluster.connect(carol, C);

    const exit = B.kill('SIGTERM');
    expect((await Promise.all([aliceB.waitClosed(10000), bobB.waitClosed(10000)])).map((c) => c.code)).toEqual([1001, 1001]);
    expect(await exit).toEqual({ code: 0, signal: null });

    aliceA.send('message.send', { channelId, text: 'still serving', clientMsgId: 'term-1' });
    const ack = await aliceA.next('message.ack');
    for (const c of [aliceA, bobC, carolC]) expect((await waitForSeq(c, channelId, 1)).message).toEqual(ack.message);
    bobC.send('message.send', { channelId, text: 'from C', clientMsgId: 'term-2' });
    const reply = await bobC.next('message.ack');
    expect((await waitForSeq(aliceA, channelId, 2)).message).toEqual(reply.message);
    for (const node of [A, C]) expect((await ready(node)).status).toBe(200);
  }, 90000);
});
