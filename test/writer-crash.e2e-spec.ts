import { MessageStore } from '../src/messages/message-store.js';
import { createChannel, registerUser, startApp, type TestApp } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/**
 * The SQLite writer thread dies right after its COMMIT, before it can reply (MessageStore.writeBatch
 * runs the batch again on a new thread). Over real sockets: the sends it had committed are
 * acknowledged and reach every connection of every member, each message once; a repeat of an
 * earlier send in that batch reaches nobody a second time.
 */
describe('a writer thread that dies after its COMMIT (SQLite file)', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    t = await startApp('sqlite');
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await t.close();
  });

  it('acknowledges what the dead run committed and delivers it live, once, to every connection', async () => {
    const alice = await registerUser(t, 'alice');
    const bob = await registerUser(t, 'bob');
    const channelId = await createChannel(t, alice, [bob]);
    const open = async (token: string) => {
      const { client } = await TestClient.connect(t.wsUrl, token);
      clients.push(client);
      return client;
    };
    const [a, a2, b] = [await open(alice.token), await open(alice.token), await open(bob.token)];

    a.send('message.send', { channelId, text: 'zero', clientMsgId: 'c0' });
    await a.next('message.ack', (d) => d.clientMsgId === 'c0');
    for (const c of [a2, b]) await c.next('message.new', (d) => d.message.seq === 1);

    t.app.get(MessageStore).crashWriterOnNextBatches('after-commit');
    a.send('message.send', { channelId, text: 'one', clientMsgId: 'c1' });
    a.send('message.send', { channelId, text: 'zero', clientMsgId: 'c0' }); // a repeat, in the same batch
    a.send('message.send', { channelId, text: 'two', clientMsgId: 'c2' });
    const acks = [await a.next('message.ack', (d) => d.clientMsgId === 'c1', 10000), await a.next('message.ack', (d) => d.clientMsgId === 'c2', 10000)];
    expect(acks.map((d) => d.message.seq)).toEqual([2, 3]);
    await a.next('message.ack', (d) => d.clientMsgId === 'c0', 10000);
    expect(a.take('error')).toEqual([]);

    for (const c of [a, a2, b]) await c.next('message.new', (d) => d.message.seq === 3, 10000);
    await new Promise((r) => setTimeout(r, 500)); // room for a second copy, were one sent
    // Every connection got seqs 1 to 3 live, each once.
    const seqs = (c: TestClient) => c.log.filter((f) => f.event === 'message.new' && f.data.message.channelId === channelId).map((f) => f.data.message.seq);
    expect(seqs(b)).toEqual([1, 2, 3]);
    expect(seqs(a2)).toEqual([1, 2, 3]);
    expect(seqs(a)).toEqual([1, 2, 3]);
  });
});
