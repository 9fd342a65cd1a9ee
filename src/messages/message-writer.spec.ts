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
  const send = (n: number): SendRequest => ({ channelId: '0198a3b2-0000-7000-8000-0000000000c1', sender, text: `m${n}`, clientMsgId: `c${n}` });
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

  let events: string[];
  let commits: { reqs: Request[]; commit: () => void }[];
  let writer: MessageWriter;
  let seq: number;

  beforeEach(() => {
    events = [];
    commits = [];
    seq = 0;
    const store = {
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
  });

  const write = (n: number) => writer.write(send(n)).then((o) => events.push(`ack ${o.message.clientMsgId}`));

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
});
