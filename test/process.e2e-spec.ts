import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, ServerProcess } from './helpers/server-process.js';
import { DATABASES, freshDatabaseUrl } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/**
 * The built server in a child process: kill -9 in the middle of a stream of sends, restart on
 * the same database, and every acknowledged message is there, with gap-free seqs. SIGTERM
 * closes sockets with 1001 and exits in time.
 */
describe.each(DATABASES)('the server process on %s', (db) => {
  let cleanup: () => Promise<void>;
  let env: Record<string, string>;
  let server: ServerProcess | null = null;

  beforeEach(() => {
    const fresh = freshDatabaseUrl(db);
    cleanup = fresh.cleanup;
    // The default (FULL) durability on SQLite, as users run it.
    env = { DATABASE_URL: fresh.url, PASSWORD_HASH_MEMORY_KIB: '1024', RATE_LIMIT_PER_SEC: '0' };
  });
  afterEach(async () => {
    if (server && server.child.exitCode === null) await server.kill('SIGKILL');
    server = null;
    await cleanup();
  });

  async function setUp(s: ServerProcess) {
    const reg = await api(s.baseUrl, 'POST', '/auth/register', { username: 'writer', password: 'password123' });
    const token = reg.body.accessToken as string;
    const ch = await api(s.baseUrl, 'POST', '/channels', { name: 'durable', visibility: 'public' }, token);
    return { token, channelId: ch.body.id as string };
  }

  async function allMessages(s: ServerProcess, token: string, channelId: string) {
    const out: { seq: number; clientMsgId: string; id: string }[] = [];
    for (let after = 0; ; ) {
      const page = await api(s.baseUrl, 'GET', `/channels/${channelId}/messages?after=${after}&limit=200`, undefined, token);
      out.push(...page.body.messages);
      if (!page.body.hasMore) return out;
      after = out.at(-1)!.seq;
    }
  }

  function expectAllAcked(acked: Map<string, { seq: number; id: string }>, stored: { seq: number; clientMsgId: string; id: string }[]) {
    expect(acked.size).toBeGreaterThan(20);
    expect(stored.map((m) => m.seq)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    const byClientId = new Map(stored.map((m) => [m.clientMsgId, m]));
    for (const [clientMsgId, ack] of acked) {
      expect(byClientId.get(clientMsgId)).toMatchObject({ seq: ack.seq, id: ack.id });
    }
  }

  it('loses no acknowledged HTTP send across kill -9', async () => {
    server = await ServerProcess.start(env);
    const { token, channelId } = await setUp(server);
    const acked = new Map<string, { seq: number; id: string }>();
    let stop = false;
    const workers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const clientMsgId = `w${w}-${i}`;
        try {
          const res = await api(server!.baseUrl, 'POST', `/channels/${channelId}/messages`, { text: `msg ${clientMsgId}`, clientMsgId }, token);
          if (res.status === 201) acked.set(clientMsgId, res.body.message);
        } catch {
          return; // the server is gone
        }
      }
    });
    while (acked.size < 150) await new Promise((r) => setTimeout(r, 10));
    await server.kill('SIGKILL');
    stop = true;
    await Promise.all(workers);

    server = await ServerProcess.start(env);
    const login = await api(server.baseUrl, 'POST', '/auth/login', { username: 'writer', password: 'password123' });
    expectAllAcked(acked, await allMessages(server, login.body.accessToken, channelId));
  });

  it('loses no acknowledged WebSocket send across kill -9', async () => {
    server = await ServerProcess.start(env);
    const { token, channelId } = await setUp(server);
    const { client } = await TestClient.connect(server.wsUrl, token);
    for (let i = 0; i < 3000; i++) client.send('message.send', { channelId, text: `ws ${i}`, clientMsgId: `ws-${i}` });
    await client.next('message.ack', (d) => d.message.seq >= 200, 20000);
    await server.kill('SIGKILL');
    await client.waitClosed();
    const acked = new Map(
      client.log.filter((f) => f.event === 'message.ack').map((f) => [f.data.clientMsgId as string, f.data.message]),
    );
    server = await ServerProcess.start(env);
    const login = await api(server.baseUrl, 'POST', '/auth/login', { username: 'writer', password: 'password123' });
    expectAllAcked(acked, await allMessages(server, login.body.accessToken, channelId));
  });

  it('on SIGTERM closes every socket with 1001, keeps what it acknowledged, and exits in time', async () => {
    server = await ServerProcess.start(env);
    const { token, channelId } = await setUp(server);
    const clients = await Promise.all([1, 2, 3].map(() => TestClient.connect(server!.wsUrl, token)));
    const sender = clients[0].client;
    for (let i = 0; i < 500; i++) sender.send('message.send', { channelId, text: `t ${i}`, clientMsgId: `term-${i}` });
    await sender.next('message.ack', (d) => d.message.seq >= 50, 20000);
    const started = Date.now();
    const exit = server.kill('SIGTERM');
    const closes = await Promise.all(clients.map((c) => c.client.waitClosed(10000)));
    expect(closes.map((c) => c.code)).toEqual([1001, 1001, 1001]);
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10000);

    const acked = new Map(sender.log.filter((f) => f.event === 'message.ack').map((f) => [f.data.clientMsgId as string, f.data.message]));
    server = await ServerProcess.start(env);
    const login = await api(server.baseUrl, 'POST', '/auth/login', { username: 'writer', password: 'password123' });
    expectAllAcked(acked, await allMessages(server, login.body.accessToken, channelId));
  });
});

/**
 * SQLite's statement journal (the original of every page a multi-row INSERT changes, kept so the
 * statement alone can be undone) stays in memory (sqlite-pragmas.ts: temp_store = MEMORY). With
 * the default it spills to a temporary file past 64 KiB, which a batch whose messages land on many
 * index pages reaches: a file created and unlinked on the writer thread for every such commit.
 * SQLITE_TMPDIR points SQLite's temporary files at a directory the test watches.
 */
describe('the server process on SQLite, temporary files', () => {
  let cleanup: () => Promise<void>;
  let server: ServerProcess | null = null;
  let tmp: string;

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'parley-sqlite-tmp-'));
  });
  afterEach(async () => {
    if (server && server.child.exitCode === null) await server.kill('SIGKILL');
    server = null;
    await cleanup?.();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('writes batches that change many existing pages without a temporary file', async () => {
    const fresh = freshDatabaseUrl('sqlite');
    cleanup = fresh.cleanup;
    server = await ServerProcess.start({ DATABASE_URL: fresh.url, PASSWORD_HASH_MEMORY_KIB: '1024', RATE_LIMIT_PER_SEC: '0', HTTP_RATE_LIMIT: 'false', SQLITE_TMPDIR: tmp });
    const created: string[] = [];
    const watcher = watch(tmp, (_type, name) => created.push(String(name)));
    try {
      const reg = await api(server.baseUrl, 'POST', '/auth/register', { username: 'journal', password: 'password123' });
      const token = reg.body.accessToken as string;
      const ch = await api(server.baseUrl, 'POST', '/channels', { name: 'journal', visibility: 'public' }, token);
      const { client } = await TestClient.connect(server.wsUrl, token);
      // Random client ids: each batch's rows land on many existing leaves of the
      // (sender_id, client_msg_id) index, so a batch's INSERT changes far more than 16 old pages.
      let sent = 0;
      const burst = async (n: number) => {
        for (let i = 0; i < n; i++) client.send('message.send', { channelId: ch.body.id, text: `m ${sent} ${'x'.repeat(200)}`, clientMsgId: randomUUID() });
        sent += n;
        await client.next('message.ack', (d) => d.message.seq >= sent, 20000).catch((e) => {
          throw new Error(JSON.stringify(client.frames.find((f) => f.event === 'error')?.data) + String(e).slice(0, 100));
        });
      };
      await burst(2000);
      for (let b = 0; b < 10; b++) await burst(100);
      await new Promise((r) => setTimeout(r, 1500)); // the search indexing runs a second after the sends
      expect(client.take('error')).toEqual([]);
      expect(created).toEqual([]);
      await client.close();
    } finally {
      watcher.close();
    }
  });
});
