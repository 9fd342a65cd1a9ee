import { MetricsService } from '../metrics/metrics.service.js';
import type { WebhookOutbox } from '../webhooks/webhook-outbox.js';
import type { MessageView } from './message.mapper.js';
import { newMessage, type Outcome, type Request, type SendRequest } from './message-batch.js';
import type { MessageStore } from './message-store.js';
import { MessageWriter } from './message-writer.js';

/**
 * The group-commit schedule on its own: when batches go to the database and in which order their
 * commits are told. The database is a script here (each writeBatch waits until the test commits
 * it), because what is checked is the order of events around it; the batches themselves run on
 * real databases in messages.service.spec.ts and sqlite-writer.spec.ts.
 */
describe('MessageWriter schedule', () => {
  const sender = { id: '0198a3b2-0000-7000-8000-000000000001', username: 'ana' };
  const channelA = '0198a3b2-0000-7000-8000-0000000000c1';
  const send = (n: number, channelId = channelA): SendRequest => ({ channelId, sender, text: `m${n}`, clientMsgId: `c${n}` });
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

  let events: string[];
  let commits: { reqs: Request[]; commit: () => void }[];
  let writer: MessageWriter;
  let seq: number;

  /** A writer over a scripted store that takes `batchesInFlight` batches at once (SQLite 1, PostgreSQL more). */
  const start = (batchesInFlight: number) => {
    events = [];
    commits = [];
    seq = 0;
    const store = {
      batchesInFlight,
      writeBatch: (reqs: Request[]) => {
        events.push(`batch ${reqs.map((r) => (r as SendRequest).clientMsgId).join(',')}`);
        return new Promise((resolve) => {
          commits.push({
            reqs,
            commit: () => {
              const outcomes: Outcome[] = reqs.map((r) => ({ message: newMessage(r as SendRequest, { id: `id${++seq}`, seq, rev: seq, createdAt: 'now' }), duplicate: false }));
              resolve({ outcomes, transactions: 1, appended: false });
            },
          });
        });
      },
    } as unknown as MessageStore;
    writer = new MessageWriter(store, { onAppended: () => undefined } as unknown as WebhookOutbox, new MetricsService());
    writer.onCommitted = (created: MessageView[]) => events.push(`committed ${created.map((m) => m.clientMsgId).join(',')}`);
  };
  beforeEach(() => start(1));

  const write = (n: number, channelId?: string) => writer.write(send(n, channelId)).then((o) => events.push(`ack ${o.message.clientMsgId}`));

  it('hands what queued during a commit to the database before that commit is answered, and tells the commits in order', async () => {
    const acks = [write(1)];
    await tick();
    expect(events).toEqual(['batch c1']);
    acks.push(write(2), write(3)); // arrive while c1 commits
    await tick();
    expect(commits).toHaveLength(1); // one batch at a time in the database

    commits[0].commit();
    await tick();
    // c2,c3 went to the database before c1's post-commit hook and acks ran.
    expect(events.slice(0, 4)).toEqual(['batch c1', 'batch c2,c3', 'committed c1', 'ack c1']);

    commits[1].commit();
    await Promise.all(acks);
    expect(events).toEqual(['batch c1', 'batch c2,c3', 'committed c1', 'ack c1', 'committed c2,c3', 'ack c2', 'ack c3']);
  });

  it('drains: resolves only when every queued batch has committed and been answered', async () => {
    void write(1);
    await tick();
    void write(2);
    let drained = false;
    const drain = writer.drain().then(() => (drained = true));
    commits[0].commit();
    await tick();
    expect(drained).toBe(false); // c2 is in the database now
    commits[1].commit();
    await drain;
    expect(events).toEqual(['batch c1', 'batch c2', 'committed c1', 'ack c1', 'committed c2', 'ack c2']);
  });

  describe('several batches in flight (PostgreSQL)', () => {
    const channelB = '0198a3b2-0000-7000-8000-0000000000c2';
    const channelC = '0198a3b2-0000-7000-8000-0000000000c3';
    beforeEach(() => start(2));

    it("starts a second batch while the first commits, without the first's channel, whose requests wait in order", async () => {
      const acks = [write(1)];
      await tick();
      acks.push(write(2), write(3, channelB), write(4), write(5, channelB));
      await tick();
      // c2 and c4 are channel A's, which c1's batch holds: only B's went in.
      expect(events).toEqual(['batch c1', 'batch c3,c5']);
      acks.push(write(6, channelC));
      await tick();
      expect(commits).toHaveLength(2); // two at most: c6 waits too

      commits[1].commit(); // B's commits first: commits across channels are not ordered
      await tick();
      expect(events.slice(2)).toEqual(['batch c6', 'committed c3,c5', 'ack c3', 'ack c5']); // A is still held
      commits[0].commit();
      await tick();
      expect(events.slice(6)).toEqual(['batch c2,c4', 'committed c1', 'ack c1']);
      commits[2].commit();
      await tick();
      commits[3].commit();
      await Promise.all(acks);
      expect(events.slice(9)).toEqual(['committed c6', 'ack c6', 'committed c2,c4', 'ack c2', 'ack c4']);
    });

    it('keeps a channel to one batch at a time, so its requests commit in arrival order', async () => {
      const acks = [write(1)];
      await tick();
      acks.push(write(2));
      await tick();
      expect(events).toEqual(['batch c1']); // c2 waits for c1's commit, though a slot is free
      commits[0].commit();
      await tick();
      expect(events).toEqual(['batch c1', 'batch c2', 'committed c1', 'ack c1']);
      commits[1].commit();
      await Promise.all(acks);
    });

    it('sends a large queue out as two batches by channel, and holds back a second batch under half the size of the one in flight', async () => {
      const channels = Array.from({ length: 8 }, (_, i) => `0198a3b2-0000-7000-8000-0000000001${i}0`);
      const acks = Array.from({ length: 80 }, (_, i) => write(i, channels[i % 8]));
      await tick();
      // 80 queued, nothing in flight: channels 0-3 (40 requests) in one batch, 4-7 in the other.
      expect(commits.map((c) => c.reqs.length)).toEqual([40, 40]);
      expect(new Set(commits[0].reqs.map((r) => r.channelId))).toEqual(new Set(channels.slice(0, 4)));
      commits[0].commit();
      await tick();
      // Channels 0-3 are free again, 4-7 still in flight. Three new sends to free channels would
      // be a batch of 3 beside one of 40: they wait for it, also with 30 more queued for a busy one.
      acks.push(write(100, channels[0]), write(101, channels[1]), write(102, channels[2]));
      await tick();
      expect(commits).toHaveLength(2);
      for (let i = 0; i < 30; i++) acks.push(write(200 + i, channels[5]));
      await tick();
      expect(commits).toHaveLength(2);
      commits[1].commit();
      await tick();
      // Nothing in flight, 33 queued (under the split's 64): one batch.
      expect(commits.map((c) => c.reqs.length)).toEqual([40, 40, 33]);
      commits[2].commit();
      await Promise.all(acks);
    });

    it('drains only when both batches have committed', async () => {
      void write(1);
      void write(2, channelB);
      await tick();
      expect(commits).toHaveLength(1); // the same turn: one batch
      void write(3, channelC);
      await tick();
      let drained = false;
      const drain = writer.drain().then(() => (drained = true));
      commits[0].commit();
      await tick();
      expect(drained).toBe(false); // c3's batch is still in flight
      commits[1].commit();
      await drain;
      expect(events).toEqual(['batch c1,c2', 'batch c3', 'committed c1,c2', 'ack c1', 'ack c2', 'committed c3', 'ack c3']);
    });
  });
});
