import { randomUUID } from 'node:crypto';
import { Cluster, eventually, sleep } from './helpers/cluster.js';
import { api } from './helpers/server-process.js';
import { WebhookReceiver } from './helpers/webhook-receiver.js';

const ON_POSTGRES = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '');
if (!ON_POSTGRES) process.stderr.write('webhooks-cluster.e2e-spec.ts skipped: several instances need PostgreSQL (set DATABASE_URL=postgres://...)\n');
const describeCluster = ON_POSTGRES ? describe : describe.skip;

/**
 * Two instances of the built server on one PostgreSQL and one Redis, both delivering the one
 * outbox: each event reaches the receiver exactly once (the leases), in order per channel, and
 * notification.needed is folded across instances.
 */
describeCluster('webhooks with two instances', () => {
  let receiver: WebhookReceiver;
  let cluster: Cluster;
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    cluster = await Cluster.start(2, {
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: 'whsec-cluster-0123456789abcdef',
      WEBHOOK_POLL_MS: '20',
      WEBHOOK_RETRY_MIN_MS: '50',
      WEBHOOK_RETRY_MAX_MS: '200',
      NOTIFICATION_INTERVAL_MS: '60000',
    });
  }, 120000);
  afterAll(async () => {
    await cluster?.stop();
    await receiver?.close();
  });

  it('delivers each event by exactly one instance, in order per channel', () =>
    cluster.explain(async () => {
      const [a, b] = cluster.nodes;
      receiver.delayMs = 20; // slow enough that both instances hold claims at the same time
      const users = await cluster.users(2, 'hook');
      const channels = [await cluster.channel(users[0], [users[1]]), await cluster.channel(users[1], [users[0]]), await cluster.channel(users[0], [users[1]])];
      const sent: { id: string; channelId: string; seq: number }[] = [];
      await Promise.all(
        [a, b].flatMap((node, n) =>
          channels.map(async (channelId) => {
            for (let i = 0; i < 15; i++) {
              const res = await api(node.baseUrl, 'POST', `/channels/${channelId}/messages`, { text: `n${n} ${i}`, clientMsgId: randomUUID() }, users[n].token);
              if (res.status !== 201) throw new Error(`send: ${res.status} ${JSON.stringify(res.body)}`);
              sent.push(res.body.message);
            }
          }),
        ),
      );
      await eventually('every message.created', () => receiver.ofType('message.created').length >= sent.length, 30000);
      await sleep(500); // room for a duplicate to show up
      const ids = receiver.requests.map((r) => r.event.id);
      expect(ids.length).toBe(new Set(ids).size); // nothing delivered twice
      expect(receiver.ofType('message.created')).toHaveLength(sent.length);
      for (const channelId of channels) {
        const seqs = receiver.ofType('message.created').filter((r) => r.event.data.message.channelId === channelId).map((r) => r.event.data.message.seq);
        expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      }
      // Both instances delivered (the work is shared, not left to one).
      const byNode = await Promise.all([a, b].map((n) => cluster.metric(n, 'parley_webhook_attempts_total')));
      expect(byNode.every((n) => n > 0)).toBe(true);
      expect(byNode[0] + byNode[1]).toBe(receiver.requests.length);
      receiver.delayMs = 0;
    }));

  it('folds notification.needed across instances: one per user and channel', () =>
    cluster.explain(async () => {
      const [a, b] = cluster.nodes;
      const [alice, bob, carol] = await cluster.users(3, 'fold');
      const channelId = await cluster.channel(alice, [bob, carol]);
      await Promise.all(
        [a, b].flatMap((node) =>
          [alice, carol].map((u) => api(node.baseUrl, 'POST', `/channels/${channelId}/messages`, { text: 'ping', clientMsgId: randomUUID() }, u.token)),
        ),
      );
      await eventually('four message.created', () => receiver.ofType('message.created').filter((r) => r.event.data.message.channelId === channelId).length === 4);
      await sleep(500);
      const toBob = receiver.ofType('notification.needed').filter((r) => r.event.data.channel.id === channelId && r.event.data.user.id === bob.id);
      expect(toBob).toHaveLength(1);
    }));
});
