import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { DATABASES, freshDatabaseUrl, testEnv } from '../../test/helpers/test-app.js';
import { AppModule } from '../app.module.js';
import { loadConfig } from '../config/app-config.js';
import { LocalFanoutBus } from '../fanout/fanout-bus.js';
import { UsersService } from '../users/users.service.js';
import { ChannelStateStore } from './channel-state.store.js';
import { ChannelsService } from './channels.service.js';

/** The in-memory channel state on a real database: loads, changes from the bus, refreshes. */
describe.each(DATABASES)('ChannelStateStore on %s', (db) => {
  let ctx: INestApplicationContext;
  let cleanup: () => Promise<void>;
  let dataSource: DataSource;
  let n = 0;

  beforeAll(async () => {
    const fresh = freshDatabaseUrl(db);
    cleanup = fresh.cleanup;
    const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(loadConfig(testEnv(fresh.url)))] }).compile();
    ctx = await moduleRef.init();
    dataSource = ctx.get(DataSource);
  });
  afterAll(async () => {
    await ctx.close();
    await cleanup();
  });

  /** A private channel of two users, and a store of its own with nothing cached yet. */
  async function setUp() {
    const users = ctx.get(UsersService);
    const [a, b] = await Promise.all([users.create(`sa${++n}`, 'x'), users.create(`sb${++n}`, 'x')]);
    const created = await ctx.get(ChannelsService).create({ id: a.id, username: a.username }, { name: `st${++n}`, visibility: 'private', members: [b.username] });
    const bus = new LocalFanoutBus();
    return { a, b, channelId: created.id, bus, store: new ChannelStateStore(dataSource, bus) };
  }

  it('never caches a load that changes overtook again and again (a member who left would stay a member)', async () => {
    const { channelId, store } = await setUp();
    const internals = store as unknown as { read: (id: string) => Promise<unknown> };
    const read = internals.read.bind(store);
    internals.read = async (id: string) => {
      const state = await read(id);
      store.touch(id); // a committed change lands while every read is in flight
      return state;
    };
    expect(await store.get(channelId)).not.toBeNull(); // answered once...
    expect(store.peek(channelId)).toBeUndefined(); // ...but not kept
  });

  it('applies the changes that come through the bus to the cached state', async () => {
    const { a, b, channelId, store, bus } = await setUp();
    const state = (await store.get(channelId))!;
    expect(store.peersOf(a.id, 100)).toEqual(new Set([b.id]));
    bus.publish('member.left', { channelId, user: { id: b.id, username: b.username } }); // as a remote change is applied

    expect(state.members.has(b.id)).toBe(false);
    expect(store.peersOf(a.id, 100)).toEqual(new Set());
  });

  it('refreshes a cached channel in place from the database (members and markers a cut bus missed)', async () => {
    const { a, b, channelId, store } = await setUp();
    const state = (await store.get(channelId))!;
    await dataSource.query(`UPDATE memberships SET last_read_seq = 7 WHERE channel_id = '${channelId}' AND user_id = '${a.id}'`);
    await dataSource.query(`DELETE FROM memberships WHERE channel_id = '${channelId}' AND user_id = '${b.id}'`);
    expect(await store.refresh(channelId)).toBe(state);
    expect(state.members.get(a.id)?.lastReadSeq).toBe(7);
    expect(state.members.has(b.id)).toBe(false);
    expect(store.peersOf(b.id, 100)).toEqual(new Set());
  });
});
