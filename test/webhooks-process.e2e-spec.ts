import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { eventually } from './helpers/cluster.js';
import { api, freePort, ServerProcess } from './helpers/server-process.js';
import { DATABASES, freshDatabaseUrl, registerUser, startApp } from './helpers/test-app.js';
import { WebhookReceiver } from './helpers/webhook-receiver.js';
import { signWebhook } from '../src/webhooks/webhook-signature.js';

const SECRET = 'whsec-process-0123456789abcdef';

/**
 * The outbox across a crash: the built server commits events while the receiver fails, is
 * killed with SIGKILL with them undelivered, and the restarted server delivers every one once
 * the receiver accepts. And the example receiver of docs/webhooks.md, run as users would.
 */
describe.each(DATABASES)('webhooks across kill -9 on %s', (db) => {
  let receiver: WebhookReceiver;
  let server: ServerProcess | null = null;
  let cleanup: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    if (server?.alive) await server.kill('SIGKILL');
    await cleanup();
    await receiver.close();
  });

  it('loses no committed event: the restarted server delivers all, in order per channel', async () => {
    const fresh = freshDatabaseUrl(db);
    cleanup = fresh.cleanup;
    const env = {
      DATABASE_URL: fresh.url,
      PASSWORD_HASH_MEMORY_KIB: '1024',
      RATE_LIMIT_PER_SEC: '0',
      HTTP_RATE_LIMIT: 'false',
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_RETRY_MIN_MS: '50',
      WEBHOOK_RETRY_MAX_MS: '200',
      WEBHOOK_POLL_MS: '50',
      // An attempt cut by the kill holds its event for its lease (3 timeouts + 10 s), then it goes again.
      WEBHOOK_TIMEOUT_MS: '1000',
    };
    receiver.decide = () => 503; // down: everything stays in the outbox
    server = await ServerProcess.start(env);
    const reg = await api(server.baseUrl, 'POST', '/auth/register', { username: 'hooked', password: 'password123' });
    const token = reg.body.accessToken as string;
    const channels: string[] = [];
    for (const name of ['crash-a', 'crash-b']) channels.push((await api(server.baseUrl, 'POST', '/channels', { name, visibility: 'public' }, token)).body.id);
    const acked: { id: string; channelId: string; seq: number }[] = [];
    await Promise.all(
      channels.map(async (channelId) => {
        for (let i = 0; i < 20; i++) {
          const res = await api(server!.baseUrl, 'POST', `/channels/${channelId}/messages`, { text: `m${i}`, clientMsgId: randomUUID() }, token);
          expect(res.status).toBe(201);
          acked.push(res.body.message);
        }
      }),
    );
    await eventually('attempts at the first events', () => receiver.requests.length >= 3);
    await server.kill('SIGKILL');
    expect(receiver.accepted).toHaveLength(0);

    receiver.decide = () => 204;
    server = await ServerProcess.start(env);
    await eventually('every message.created', () => new Set(receiver.ofType('message.created').map((r) => r.event.id)).size === acked.length, 30000);
    // The user's and the channels' events are other keys, delivered on their own: wait for them too.
    await eventually('the user.created and channel.created events', () => receiver.ofType('user.created').length >= 1 && receiver.ofType('channel.created').length >= 2, 30000);
    expect(receiver.ofType('user.created')).toHaveLength(1);
    expect(receiver.ofType('channel.created')).toHaveLength(2);
    for (const channelId of channels) {
      const delivered = receiver.ofType('message.created').filter((r) => r.event.data.message.channelId === channelId);
      expect(delivered.map((r) => r.event.data.message.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const stored = acked.filter((m) => m.channelId === channelId).sort((x, y) => x.seq - y.seq);
      expect(delivered.map((r) => r.event.data.message.id)).toEqual(stored.map((m) => m.id));
    }
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    await eventually('an empty backlog', async () => /^parley_webhook_backlog 0$/m.test(await (await fetch(`${server!.baseUrl}/metrics`)).text()));
    expect(metrics).toMatch(/^parley_webhook_attempts_total\{result="success"\} \d+$/m);
  });
});

describe('the example receiver (scripts/webhook-receiver.mjs)', () => {
  let child: ChildProcess | null = null;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('prints each verified event once, and answers 401 to a forged, stale or unsigned request', async () => {
    const port = await freePort();
    child = spawn(process.execPath, [join(process.cwd(), 'scripts', 'webhook-receiver.mjs')], { env: { PATH: process.env.PATH ?? '', WEBHOOK_SECRET: SECRET, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    await eventually('the receiver listening', () => err.includes('listening'));
    const url = `http://127.0.0.1:${port}/`;

    const t = await startApp('sqlite', { WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET, WEBHOOK_POLL_MS: '50' });
    try {
      const user = await registerUser(t, 'receiver');
      await eventually('user.created printed', () => out.includes(user.id));
      const event = JSON.parse(out.trim().split('\n')[0]);
      expect(event).toMatchObject({ type: 'user.created', data: { user: { id: user.id, username: user.username } } });
    } finally {
      await t.close();
    }

    const body = JSON.stringify({ id: randomUUID(), type: 'user.created', createdAt: new Date().toISOString(), data: {} });
    const post = (headers: Record<string, string>, b = body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: b });
    const delivery = randomUUID();
    expect((await post({ 'x-parley-signature': signWebhook(SECRET, body), 'x-parley-delivery': delivery })).status).toBe(204);
    expect((await post({ 'x-parley-signature': signWebhook(SECRET, body), 'x-parley-delivery': delivery })).status).toBe(204); // a retry
    expect((await post({ 'x-parley-signature': signWebhook('wrong-secret-0123456789', body) })).status).toBe(401);
    expect((await post({ 'x-parley-signature': signWebhook(SECRET, body) }, body + ' ')).status).toBe(401);
    expect((await post({ 'x-parley-signature': signWebhook(SECRET, body, Math.floor(Date.now() / 1000) - 3600) })).status).toBe(401);
    expect((await post({})).status).toBe(401);
    await new Promise((r) => setTimeout(r, 100));
    expect(out.trim().split('\n').filter((l) => JSON.parse(l).id === JSON.parse(body).id)).toHaveLength(1);
  });
});
