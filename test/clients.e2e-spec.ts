import { jest } from '@jest/globals';
import { createServer, Server, Socket } from 'node:net';
import { login, ParleyError, refreshingToken, register } from '../sdk/src/index.js';
import type { Message } from '../sdk/src/index.js';
import { Cluster, eventually, seqs, sleep } from './helpers/cluster.js';
import { SdkProbe } from './helpers/sdk.js';
import { api, ServerProcess } from './helpers/server-process.js';
import { freshDatabaseUrl } from './helpers/test-app.js';

/**
 * @parley/client (sdk/) against the real built server, run as a child process: what the SDK
 * promises an application (each send resolves once; every message handed out once, in seq order
 * per channel) through a `kill -9` and restart with sends in flight, a dropped TCP connection,
 * token expiry, and two instances of a cluster.
 */
jest.setTimeout(180_000);

const PASSWORD = 'password123';
let counter = 0;
const uniqueName = (p: string) => `${p}${++counter}_${Math.random().toString(36).slice(2, 7)}`;

function serverEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    RATE_LIMIT_PER_SEC: '0',
    HTTP_RATE_LIMIT: 'false',
    PASSWORD_HASH_MEMORY_KIB: '1024',
    HEARTBEAT_INTERVAL_MS: '2000',
    PRESENCE_GRACE_MS: '300',
    ...extra,
  };
}

async function signUp(base: string) {
  return register(base, { username: uniqueName('u'), password: PASSWORD });
}

/** A public channel of `owner` with `members`; its id. */
async function channel(base: string, ownerToken: string, members: string[]): Promise<string> {
  const res = await api(base, 'POST', '/channels', { name: uniqueName('room-'), visibility: 'public', members }, ownerToken);
  expect(res.status).toBe(201);
  return res.body.id;
}

/** Every stored message of a channel over HTTP, ascending. */
async function stored(base: string, token: string, channelId: string): Promise<Message[]> {
  const out: Message[] = [];
  for (let after = 0; ; ) {
    const page = await api(base, 'GET', `/channels/${channelId}/messages?after=${after}&limit=200`, undefined, token);
    out.push(...page.body.messages);
    if (!page.body.hasMore || page.body.messages.length === 0) return out;
    after = out.at(-1)!.seq;
  }
}

/** Each promise's outcome, counting how often each settled (a promise settles once: this proves the SDK never calls back twice either). */
function track(promises: Promise<Message>[]) {
  const settled = promises.map(() => 0);
  const outcomes = promises.map((p, i) =>
    p.then(
      (m) => (settled[i]++, { ok: true as const, m }),
      (e: ParleyError) => (settled[i]++, { ok: false as const, e }),
    ),
  );
  return { settled, all: Promise.all(outcomes) };
}

describe('SDK against the built server (SQLite)', () => {
  const db = freshDatabaseUrl('sqlite');
  const env = serverEnv(db.url);
  let server: ServerProcess;
  const probes: SdkProbe[] = [];
  const probe = async (...args: Parameters<typeof SdkProbe.create>) => {
    const p = await SdkProbe.create(...args);
    probes.push(p);
    return p;
  };

  beforeAll(async () => {
    server = await ServerProcess.start(env);
  });
  afterEach(() => {
    for (const p of probes.splice(0)) p.client.close();
  });
  afterAll(async () => {
    if (server?.alive) await server.kill('SIGKILL');
    await db.cleanup();
  });

  it('the web client is served at / with its own CSP; the API around it is not shadowed', async () => {
    const page = await fetch(`${server.baseUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(await page.text()).toContain('<script type="module" src="app.js">');
    const script = await fetch(`${server.baseUrl}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    for (const path of ['/health', '/docs-json', '/asyncapi.json']) {
      const res = await fetch(server.baseUrl + path);
      expect([path, res.status, res.headers.get('content-type')?.split(';')[0]]).toEqual([path, 200, 'application/json']);
    }
    expect((await fetch(`${server.baseUrl}/metrics`)).status).toBe(200);
    expect((await api(server.baseUrl, 'GET', '/conversations')).status).toBe(401);
    const missing = await fetch(`${server.baseUrl}/no-such-page`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('kill -9 and restart with 200 sends in flight: each send resolves once, the receiver sees 1..200 once each, in order', async () => {
    const alice = await signUp(server.baseUrl);
    const bob = await signUp(server.baseUrl);
    const channelId = await channel(server.baseUrl, alice.accessToken, [bob.user.username]);
    const a = await probe({ url: server.baseUrl, token: alice.accessToken });
    const b = await probe({ url: server.baseUrl, token: bob.accessToken });
    await Promise.all([a.client.connect(), b.client.connect()]);

    const n = 200;
    const { settled, all } = track(seqs(n).map((i) => a.client.send({ channelId, text: `m${i}` })));
    // Some are stored and acknowledged, most are in flight: then the server dies.
    await eventually('a first message to be stored', async () => b.seqs(channelId).length > 0, 20000, 5);
    await server.kill('SIGKILL');
    server = await ServerProcess.start(env, server.port);

    const outcomes = await all;
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(settled.every((c) => c === 1)).toBe(true);
    const sent = outcomes.map((o) => (o as { m: Message }).m);
    expect(new Set(sent.map((m) => m.clientMsgId)).size).toBe(n);
    expect(sent.map((m) => m.seq).sort((x, y) => x - y)).toEqual(seqs(n));
    expect(sent.map((m) => m.text)).toEqual(seqs(n).map((i) => `m${i}`));

    await eventually('bob to see all 200', () => b.seqs(channelId).length >= n, 60000);
    await sleep(300); // nothing more may come
    expect(b.seqs(channelId)).toEqual(seqs(n));
    expect(b.texts(channelId)).toEqual(seqs(n).map((i) => `m${i}`));
    expect(a.seqs(channelId)).toEqual(seqs(n)); // the sender's own stream too
    expect((await stored(server.baseUrl, bob.accessToken, channelId)).length).toBe(n);
    expect(a.states.some((s) => s.state === 'reconnecting')).toBe(true);
    // The conversation list kept up: bob has 200 unread, alice none.
    await eventually('bob unread 200', () => b.client.conversation(channelId)?.unreadCount === n, 10000);
    expect(a.client.conversation(channelId)?.unreadCount).toBe(0);
    expect(a.violations.concat(b.violations)).toEqual([]);
  });

  it('a dropped TCP connection (reset, then a silent black hole): the client notices, reconnects, resumes; nothing lost or doubled', async () => {
    const alice = await signUp(server.baseUrl);
    const bob = await signUp(server.baseUrl);
    const channelId = await channel(server.baseUrl, alice.accessToken, [bob.user.username]);
    const proxy = await TcpProxy.start(server.port);
    try {
      const a = await probe({ url: proxy.url, token: alice.accessToken }, server.baseUrl);
      const b = await probe({ url: server.baseUrl, token: bob.accessToken });
      await Promise.all([a.client.connect(), b.client.connect()]);
      const text = (i: number) => `t${i}`;
      let i = 0;
      const sendBoth = async (k: number) => {
        const out: Promise<Message>[] = [];
        for (let j = 0; j < k; j++) {
          i++;
          out.push((i % 2 ? a : b).client.send({ channelId, text: text(i) }));
        }
        return out;
      };
      const all: Promise<Message>[] = [];
      all.push(...(await sendBoth(10)));
      await eventually('alice to see 10', () => a.seqs(channelId).length === 10);

      // 1. Reset: both ends see the connection die at once.
      proxy.reset();
      all.push(...(await sendBoth(10)));
      await eventually('alice to see 20', () => a.seqs(channelId).length === 20, 30000);

      // 2. Black hole: the connection stays "open" and carries nothing; only the heartbeat
      // (2 s here) can tell. Sends on both sides meanwhile.
      proxy.blackhole = true;
      all.push(...(await sendBoth(10)));
      await sleep(1500);
      expect(a.client.state).toBe('ready'); // not noticed yet
      await eventually('alice to notice the dead connection', () => a.states.some((s) => s.state === 'reconnecting' && s.closeCode === 4000), 20000);
      proxy.blackhole = false;
      proxy.reset(); // what the black hole held is gone
      const results = await Promise.all(all);
      expect(new Set(results.map((m) => m.seq)).size).toBe(30);
      await eventually('both to see 30', () => a.seqs(channelId).length >= 30 && b.seqs(channelId).length >= 30, 30000);
      await sleep(300);
      expect(a.seqs(channelId)).toEqual(seqs(30));
      expect(b.seqs(channelId)).toEqual(seqs(30));
      expect(new Set(a.texts(channelId))).toEqual(new Set(seqs(30).map(text)));
      expect((await stored(server.baseUrl, bob.accessToken, channelId)).length).toBe(30);
    } finally {
      await proxy.close();
    }
  });

  it('v1.1: edit, delete, react through the SDK; changes made while a client was away reach it once each, in their final state', async () => {
    const alice = await signUp(server.baseUrl);
    const bob = await signUp(server.baseUrl);
    const channelId = await channel(server.baseUrl, alice.accessToken, [bob.user.username]);
    const proxy = await TcpProxy.start(server.port);
    try {
      const a = await probe({ url: proxy.url, token: alice.accessToken }, server.baseUrl);
      const b = await probe({ url: server.baseUrl, token: bob.accessToken });
      await Promise.all([a.client.connect(), b.client.connect()]);
      expect(a.client.supportsRevisions).toBe(true);
      const m = [];
      for (let i = 1; i <= 5; i++) m.push(await b.client.send({ channelId, text: `v${i} @${alice.user.username}` }));
      const reply = await a.client.send({ channelId, text: 'an answer', replyToSeq: 1 });
      expect(reply.replyTo).toMatchObject({ seq: 1, sender: { id: bob.user.id } });
      await eventually('alice has 6', () => a.seqs(channelId).length === 6);
      expect(a.client.conversation(channelId)?.mentionCount).toBe(0); // she sent after them: read
      await eventually('bob sees no mention (his own)', () => b.client.conversation(channelId)?.mentionCount === 0);

      // Live: each change reaches the other side once, as messageUpdated.
      const edited = await b.client.edit(channelId, 1, 'v1 edited');
      expect(edited).toMatchObject({ seq: 1, text: 'v1 edited', deleted: false });
      expect(edited.editedAt).toEqual(expect.any(String));
      const reacted = await a.client.react(channelId, 1, '👍');
      expect(reacted.reactions).toEqual([{ emoji: '👍', count: 1, userIds: [alice.user.id] }]);
      expect((await a.client.react(channelId, 1, '👍')).rev).toBe(reacted.rev); // idempotent: no new rev
      await eventually('bob sees the reaction', () => b.updates.some((u) => u.seq === 1 && u.reactions.length === 1));
      await eventually('alice sees the edit', () => a.updates.some((u) => u.seq === 1 && u.text === 'v1 edited'));
      await expect(a.client.edit(channelId, 2, 'not mine')).rejects.toMatchObject({ code: 'forbidden' });

      // Alice is cut off; meanwhile bob edits, deletes, reacts and sends.
      proxy.down = true;
      proxy.reset();
      await eventually('alice to notice', () => a.client.state === 'reconnecting');
      a.updates.length = 0;
      await b.client.edit(channelId, 2, 'v2 edited once');
      await b.client.edit(channelId, 2, 'v2 edited twice');
      await b.client.delete(channelId, 3);
      await b.client.react(channelId, 4, ':tada:');
      await b.client.react(channelId, 1, '👍', { remove: true }); // not hers: nothing changes
      await b.client.send({ channelId, text: 'v7' });
      proxy.down = false;
      await eventually('alice back with 7 messages', () => a.client.state === 'ready' && a.seqs(channelId).length === 7, 30000);
      await eventually('alice gets the changes', () => new Set(a.updates.map((u) => u.seq)).size >= 3, 20000);
      await sleep(500);
      // Each changed message once, in its final state; nothing else.
      const bySeq = new Map(a.updates.map((u) => [u.seq, u]));
      expect(a.updates.map((u) => u.seq).sort()).toEqual([2, 3, 4]);
      expect(bySeq.get(2)).toMatchObject({ text: 'v2 edited twice' });
      expect(bySeq.get(3)).toMatchObject({ deleted: true, text: '' });
      expect(bySeq.get(4)!.reactions).toEqual([{ emoji: ':tada:', count: 1, userIds: [bob.user.id] }]);
      expect(a.seqs(channelId)).toEqual(seqs(7));
      // The conversation list: the head rev and the last message as the server has them.
      const stored7 = await stored(server.baseUrl, alice.accessToken, channelId);
      expect(a.client.conversation(channelId)?.headRev).toBe(Math.max(...stored7.map((x) => x.rev)));
      expect(a.violations.concat(b.violations)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('administration through the SDK: channel.updated, member.updated, a removal, a hidden DM that comes back with its next message', async () => {
    const alice = await signUp(server.baseUrl);
    const bob = await signUp(server.baseUrl);
    const channelId = await channel(server.baseUrl, alice.accessToken, [bob.user.username]);
    const a = await probe({ url: server.baseUrl, token: alice.accessToken });
    const b = await probe({ url: server.baseUrl, token: bob.accessToken });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const members: string[] = [];
    b.client.on('member', (e) => members.push(`${e.type}:${e.user.username}:${e.role ?? ''}:${e.by?.username ?? ''}`));
    const renamed = uniqueName('renamed-');
    expect((await api(server.baseUrl, 'PATCH', `/channels/${channelId}`, { name: renamed }, alice.accessToken)).status).toBe(200);
    await eventually('bob sees the new name', () => b.client.conversation(channelId)?.name === renamed);
    expect((await api(server.baseUrl, 'PATCH', `/channels/${channelId}/members/${bob.user.id}`, { role: 'admin' }, alice.accessToken)).status).toBe(200);
    await eventually('bob sees his new role', () => members.includes(`updated:${bob.user.username}:admin:${alice.user.username}`));
    expect((await api(server.baseUrl, 'DELETE', `/channels/${channelId}/members/${bob.user.id}`, undefined, alice.accessToken)).status).toBe(204);
    await eventually('the channel leaves bob\'s list', () => b.client.conversation(channelId) === undefined);

    // A hidden DM leaves the list; its next message brings it back, handed out once.
    const hello = await a.client.send({ to: bob.user.username, text: 'hello' });
    await eventually('bob has the DM', () => b.seqs(hello.channelId).length === 1);
    expect((await api(server.baseUrl, 'POST', `/channels/${hello.channelId}/hide`, undefined, bob.accessToken)).status).toBe(204);
    await eventually('hidden', () => b.client.conversation(hello.channelId) === undefined);
    await a.client.send({ channelId: hello.channelId, text: 'still there?' });
    await eventually('back with the message', () => b.client.conversation(hello.channelId)?.lastMessage?.text === 'still there?');
    expect(b.texts(hello.channelId)).toEqual(['hello', 'still there?']);
    expect(a.violations.concat(b.violations)).toEqual([]);
  });

  it('resume in small pages while live frames keep coming: every message once, in order, every change in its final state', async () => {
    const alice = await signUp(server.baseUrl);
    const bob = await signUp(server.baseUrl);
    const channelId = await channel(server.baseUrl, alice.accessToken, [bob.user.username]);
    const proxy = await TcpProxy.start(server.port);
    try {
      const a = await probe({ url: proxy.url, token: alice.accessToken, syncPageSize: 5 }, server.baseUrl);
      const b = await probe({ url: server.baseUrl, token: bob.accessToken });
      await Promise.all([a.client.connect(), b.client.connect()]);
      for (let i = 1; i <= 3; i++) await b.client.send({ channelId, text: `p${i}` });
      await eventually('alice has 3', () => a.seqs(channelId).length === 3);
      proxy.down = true;
      proxy.reset();
      await eventually('alice cut off', () => a.client.state === 'reconnecting');
      for (let i = 4; i <= 40; i++) await b.client.send({ channelId, text: `p${i}` });
      for (const seq of [1, 2, 3, 10]) await b.client.edit(channelId, seq, `p${seq} edited`);
      // Back, while bob keeps sending: live frames arrive ahead of, and between, the pages.
      const syncsBefore = a.frames.filter((f) => f === 'out sync').length;
      proxy.down = false;
      const more: Promise<Message>[] = [];
      for (let i = 41; i <= 60; i++) {
        more.push(b.client.send({ channelId, text: `p${i}` }));
        await sleep(10);
      }
      await Promise.all(more);
      await eventually('alice has 60', () => a.seqs(channelId).length >= 60, 30000);
      await sleep(500);
      expect(a.seqs(channelId)).toEqual(seqs(60));
      expect(a.texts(channelId).slice(3, 60)).toEqual(seqs(60, 4).map((i) => (i === 10 ? 'p10 edited' : `p${i}`)));
      expect(a.frames.filter((f) => f === 'out sync').length - syncsBefore).toBeGreaterThanOrEqual(8); // 37+ messages, 5 a page
      // The three edits of messages she had: once each, final text.
      expect(a.updates.map((u) => [u.seq, u.text]).sort()).toEqual([[1, 'p1 edited'], [2, 'p2 edited'], [3, 'p3 edited']]);
    } finally {
      await proxy.close();
    }
  });

  it('token expiry: the server closes with 1008, getToken refreshes, the session resumes without losing a message', async () => {
    const expiring = serverEnv(db.url, { JWT_TTL: '4s' });
    const short = await ServerProcess.start(expiring);
    try {
      const alice = await signUp(short.baseUrl);
      const bob = await signUp(short.baseUrl);
      const channelId = await channel(short.baseUrl, alice.accessToken, [bob.user.username]);
      const refreshes: string[] = [];
      const a = await probe({
        url: short.baseUrl,
        getToken: refreshingToken(short.baseUrl, alice, { marginSeconds: 0, onRefresh: (t) => refreshes.push(t.accessToken) }),
      });
      // Bob logs in again whenever asked (a product would refresh; both must work).
      const b = await probe({ url: short.baseUrl, getToken: async ({ force }) => (force ? (await login(short.baseUrl, { username: bob.user.username, password: PASSWORD })).accessToken : bob.accessToken) });
      await Promise.all([a.client.connect(), b.client.connect()]);
      const sends: Promise<Message>[] = [];
      const deadline = Date.now() + 11000; // past two expiries
      for (let i = 1; Date.now() < deadline; i++) {
        sends.push(a.client.send({ channelId, text: `e${i}` }));
        await sleep(250);
      }
      const results = await Promise.all(sends);
      const n = results.length;
      await eventually('bob to see every message', () => b.seqs(channelId).length >= n, 30000);
      expect(b.seqs(channelId)).toEqual(seqs(n));
      expect(a.seqs(channelId)).toEqual(seqs(n));
      expect(a.states.filter((s) => s.closeCode === 1008).length).toBeGreaterThanOrEqual(2);
      expect(refreshes.length).toBeGreaterThanOrEqual(2);
      expect(a.client.state).toBe('ready');
    } finally {
      await short.kill('SIGKILL');
    }
  });

  it('a refused token with no getToken to ask: the client stops (closed, unauthorized) and rejects what was asked', async () => {
    const a = await probe({ url: server.baseUrl, token: 'not-a-token' });
    await expect(a.client.connect()).rejects.toMatchObject({ code: 'unauthorized' });
    expect(a.client.state).toBe('closed');
    await expect(a.client.send({ channelId: '00000000-0000-4000-8000-000000000000', text: 'x' })).rejects.toMatchObject({ code: 'closed' });
  });

  it("a send the server refuses rejects once with the server's code; the others go on", async () => {
    const alice = await signUp(server.baseUrl);
    const a = await probe({ url: server.baseUrl, token: alice.accessToken });
    await a.client.connect();
    await expect(a.client.send({ channelId: '00000000-0000-4000-8000-000000000000', text: 'x' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(a.client.send({ to: 'nobody_here_' + counter, text: 'x' })).rejects.toMatchObject({ code: 'not_found' });
    const bob = await signUp(server.baseUrl);
    const dm = await a.client.send({ to: bob.user.username, text: 'hi bob' });
    expect(dm.seq).toBe(1);
    await eventually('the DM in the list', () => a.client.conversation(dm.channelId)?.name === bob.user.username);
  });

  it('conversation list, typing, presence, join, leave, history and read markers through the SDK', async () => {
    const alice = await signUp(server.baseUrl);
    const bob = await signUp(server.baseUrl);
    const a = await probe({ url: server.baseUrl, token: alice.accessToken });
    const b = await probe({ url: server.baseUrl, token: bob.accessToken });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const first = await a.client.send({ to: bob.user.username, text: 'hello' });
    const channelId = first.channelId;
    await eventually('bob sees the DM', () => b.seqs(channelId).length === 1);
    expect(b.client.conversation(channelId)).toMatchObject({ kind: 'dm', name: alice.user.username, unreadCount: 1 });
    await b.client.send({ channelId, text: 'hi alice' }); // accepts the DM: presence flows
    const typing: string[] = [];
    a.client.on('typing', (t) => typing.push(t.user.username));
    b.client.typing(channelId);
    await eventually('alice sees bob typing', () => typing.includes(bob.user.username));
    await eventually('alice sees bob online', () => a.client.conversation(channelId)?.peer?.status === 'online');

    const read = await b.client.markRead(channelId, 2);
    expect(read.unreadCount).toBe(0);
    expect(b.client.conversation(channelId)?.unreadCount).toBe(0);

    expect(await b.client.mute(channelId)).toEqual({ channelId, muted: true });
    expect(b.client.conversation(channelId)?.muted).toBe(true);
    expect(await b.client.mute(channelId, false)).toEqual({ channelId, muted: false });
    await eventually("bob's list: unmuted (the server's conversation.update agrees)", () => b.client.conversation(channelId)?.muted === false);
    expect(a.client.conversation(channelId)?.muted).toBe(false); // alice's own view: never muted

    for (let i = 0; i < 5; i++) await a.client.send({ channelId, text: `more ${i}` });
    const page = await b.client.history(channelId, { beforeSeq: 7, limit: 3 });
    expect(page.messages.map((m) => m.seq)).toEqual([4, 5, 6]);
    expect(page.hasMore).toBe(true);

    const room = uniqueName('room');
    const joined = await a.client.join({ name: room });
    const members: string[] = [];
    a.client.on('member', (e) => members.push(`${e.type}:${e.user.username}`));
    await b.client.join({ channelId: joined.channelId });
    await eventually('alice sees bob join', () => members.includes(`joined:${bob.user.username}`));
    await b.client.send({ channelId: joined.channelId, text: 'in the room' });
    await eventually('alice gets it', () => a.seqs(joined.channelId).length === 1);
    await b.client.leave(joined.channelId);
    expect(b.client.conversation(joined.channelId)).toBeUndefined();
    await eventually('alice sees bob leave', () => members.includes(`left:${bob.user.username}`));

    b.client.close();
    await eventually('alice sees bob offline', () => a.client.conversation(channelId)?.peer?.status === 'offline', 10000);
  });
});

const ON_POSTGRES = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '');
if (!ON_POSTGRES) process.stderr.write('clients.e2e-spec.ts: the two-instance SDK test skipped: several instances need PostgreSQL and redis-server (set DATABASE_URL=postgres://...)\n');

(ON_POSTGRES ? describe : describe.skip)('SDK on two instances (PostgreSQL + Redis)', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start(2);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('two SDK clients on two instances chat both ways; each sees 1..n once, in order, with exact unread counts; one instance restarts', () =>
    cluster.explain(async () => {
      const [A, B] = cluster.nodes;
      const [alice, bob] = await cluster.users(2, 'sdk');
      const channelId = await cluster.channel(alice, [bob]);
      const a = await SdkProbe.create({ url: A.baseUrl, token: alice.token });
      const b = await SdkProbe.create({ url: B.baseUrl, token: bob.token });
      try {
        await Promise.all([a.client.connect(), b.client.connect()]);
        const sends: Promise<Message>[] = [];
        for (let i = 1; i <= 100; i++) sends.push((i % 2 ? a : b).client.send({ channelId, text: `c${i}` }));
        const sent = await Promise.all(sends);
        await eventually('both to see 100', () => a.seqs(channelId).length === 100 && b.seqs(channelId).length === 100, 30000);
        expect(a.seqs(channelId)).toEqual(seqs(100));
        expect(b.seqs(channelId)).toEqual(seqs(100));
        // Sending moves one's marker: unread = what came after one's own last message.
        const lastOwn = (u: { id: string }) => Math.max(...sent.filter((m) => m.sender?.id === u.id).map((m) => m.seq));
        const unread = (p: SdkProbe) => p.client.conversation(channelId)?.unreadCount;
        await eventually('exact unread counts', () => unread(a) === 100 - lastOwn(alice) && unread(b) === 100 - lastOwn(bob), 10000);

        // Instance B dies and comes back; bob's client resumes there; alice's sends in between arrive once.
        await B.kill('SIGKILL');
        const more = seqs(20).map((i) => a.client.send({ channelId, text: `d${i}` }));
        const restarted = await ServerProcess.start(cluster.env, B.port, 60000);
        cluster.nodes[1] = restarted;
        await Promise.all(more);
        await eventually('bob to see 120', () => b.seqs(channelId).length >= 120, 30000);
        expect(b.seqs(channelId)).toEqual(seqs(120));
      } finally {
        a.client.close();
        b.client.close();
      }
    }));
});

/**
 * A TCP proxy in front of the server, to drop connections as a network does: `reset()` destroys
 * every connection through it (both ends see it die); `blackhole` keeps them open but carries
 * nothing either way (only a heartbeat notices).
 */
class TcpProxy {
  blackhole = false;
  /** New connections are refused (reset at once), as by a server that cannot be reached. */
  down = false;
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(private readonly server: Server) {}

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  static start(targetPort: number): Promise<TcpProxy> {
    // eslint-disable-next-line prefer-const -- assigned after the server callback that uses it is made
    let proxy: TcpProxy;
    const server = createServer((client) => {
      if (proxy.down) return client.resetAndDestroy();
      const upstream = new Socket();
      upstream.connect(targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      proxy.pairs.add(pair);
      const forward = (from: Socket, to: Socket) => from.on('data', (d) => !proxy.blackhole && to.write(d));
      forward(client, upstream);
      forward(upstream, client);
      // In a black hole the far end's close is not heard either: the other side stays open.
      const end = () => {
        if (proxy.blackhole) return;
        proxy.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    proxy = new TcpProxy(server);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(proxy)));
  }

  reset(): void {
    for (const [a, b] of [...this.pairs]) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.pairs.clear();
  }

  close(): Promise<void> {
    this.reset();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
