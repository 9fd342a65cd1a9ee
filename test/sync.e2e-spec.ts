import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ChannelsService } from '../src/channels/channels.service.js';
import { MessagesService } from '../src/messages/messages.service.js';
import { DATABASES, registerUser, suiteApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

/** `sync` is no lever for abuse: ids that are no channel cost no query each, a closed connection stops it, every frame is answered. */
describe.each(DATABASES)('sync costs on %s', (db) => {
  const suite = suiteApp(db);
  let t: TestApp;
  beforeAll(() => {
    t = suite.t;
  });

  async function connect(u: TestUser) {
    const { client } = await TestClient.connect(t.wsUrl, u.token);
    suite.track(client);
    return { client };
  }
  const users = (n: number) => Promise.all(Array.from({ length: n }, () => registerUser(t, 's')));
  /** Counts the SQL statements TypeORM runs while `work` runs. */
  async function countQueries(work: () => Promise<unknown>): Promise<number> {
    const ds = t.app.get(DataSource);
    const runner = ds.createQueryRunner();
    const proto = Object.getPrototypeOf(runner) as { query: (...args: unknown[]) => Promise<unknown> };
    await runner.release();
    const original = proto.query;
    let n = 0;
    proto.query = function (this: unknown, ...args: unknown[]) {
      n++;
      return original.apply(this, args);
    };
    try {
      await work();
    } finally {
      proto.query = original;
    }
    return n;
  }
  const randomIds = (n: number) => Array.from({ length: n }, () => randomUUID());

  it('answers 500 unknown channel ids with one not_found each, remembering them: no query per id', async () => {
    const [alice] = await users(1);
    const a = (await connect(alice)).client;
    await new Promise((r) => setTimeout(r, 100)); // let the connect's own writes settle
    const ids = randomIds(500);
    const run = async () => {
      a.send('sync', { channels: Object.fromEntries(ids.map((id) => [id, 0])), ref: 'many' });
      for (let i = 0; i < 500; i++) expect(await a.next('error')).toMatchObject({ code: 'not_found', ref: 'many' });
    };
    expect(await countQueries(run)).toBeLessThanOrEqual(2);
    expect(await countQueries(run)).toBe(0);
  });

  it('stops a sync once the connection has closed', async () => {
    const [alice] = await users(1);
    const channels = t.app.get(ChannelsService);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await channels.create(alice, { name: `sy-${db}-${Date.now().toString(36)}-${i}`, visibility: 'public' })).id);
    const a = (await connect(alice)).client;
    const messages = t.app.get(MessagesService);
    const original = messages.sync;
    let calls = 0;
    messages.sync = async function (this: MessagesService, ...args: Parameters<MessagesService['sync']>) {
      if (++calls === 1) await a.close(); // the client goes away during the first channel
      return original.apply(this, args);
    };
    try {
      a.send('sync', { channels: Object.fromEntries(ids.map((id) => [id, 0])) });
      await a.waitClosed();
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toBeLessThanOrEqual(2);
    } finally {
      messages.sync = original;
    }
  });

  it('answers a sync that lists no channel with invalid_payload', async () => {
    const [alice] = await users(1);
    const a = (await connect(alice)).client;
    a.send('sync', { channels: {}, ref: 'empty' });
    expect(await a.next('error')).toMatchObject({ code: 'invalid_payload', ref: 'empty', details: { fields: { channels: expect.any(Array) } } });
  });
});
