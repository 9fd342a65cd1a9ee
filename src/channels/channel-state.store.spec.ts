import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATABASES, suiteContext } from '../../test/helpers/test-app.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { LocalFanoutBus } from '../fanout/fanout-bus.js';
import { BlocksService } from '../users/blocks.service.js';
import { UsersService } from '../users/users.service.js';
import { ChannelStateStore } from './channel-state.store.js';
import { ChannelsService } from './channels.service.js';

/** The in-memory channel state on a real database: loads, changes from the bus, refreshes, presence peers. */
describe.each(DATABASES)('ChannelStateStore on %s', (db) => {
  const suite = suiteContext(db);
  let ctx: INestApplicationContext;
  let dataSource: DataSource;
  let n = 0;

  beforeAll(() => {
    ctx = suite.ctx;
    dataSource = ctx.get(DataSource);
  });

  /**
   * A private channel of two users (b invited by a, not accepted yet), and a store and blocks of
   * their own, on a bus of their own, with nothing cached yet: what the bus brings them is what
   * another instance's changes do.
   */
  async function setUp() {
    const users = ctx.get(UsersService);
    const [a, b] = await Promise.all([users.create(`sa${++n}`, 'x'), users.create(`sb${++n}`, 'x')]);
    const created = await ctx.get(ChannelsService).create({ id: a.id, username: a.username }, { name: `st${++n}`, visibility: 'private', members: [b.username] });
    const bus = new LocalFanoutBus();
    const blocks = new BlocksService(dataSource, ctx.get(DatabaseWriter), users, bus);
    return { a, b, channelId: created.id, bus, blocks, store: new ChannelStateStore(dataSource, bus, blocks) };
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
    const { a, b, channelId, store, bus, blocks } = await setUp();
    const state = (await store.get(channelId))!;
    await blocks.of(a.id);
    expect(store.peersOf(a.id, 100)).toEqual(new Set()); // b has not accepted the channel yet
    bus.publish('member.accepted', { channelId, userId: b.id, acceptedAt: Date.now() }); // as a remote change is applied
    expect(store.peersOf(a.id, 100)).toEqual(new Set([b.id]));
    expect(store.peersOf(b.id, 100)).toEqual(new Set([a.id]));
    bus.publish('member.left', { channelId, user: { id: b.id, username: b.username } });

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

describe.each(DATABASES)('ChannelStateStore missing ids on %s', (db) => {
  const suite = suiteContext(db);
  let ctx: INestApplicationContext;

  beforeAll(() => {
    ctx = suite.ctx;
  });

  it('remembers ids that are no channel, and forgets one when a channel of that id is created', async () => {
    const bus = new LocalFanoutBus();
    const store = new ChannelStateStore(ctx.get(DataSource), bus, null as never);
    const internals = store as unknown as { read: (id: string) => Promise<unknown> };
    const read = internals.read.bind(store);
    let reads = 0;
    internals.read = (id: string) => {
      reads++;
      return read(id);
    };
    const [id, other] = [randomUUID(), randomUUID()];
    expect(await store.get(id)).toBeNull();
    expect(await store.get(id)).toBeNull();
    expect(reads).toBe(1);
    await store.learnMissing([id, other]);
    expect(await store.get(other)).toBeNull();
    expect(reads).toBe(1);
    bus.publish('conversation.created', { channelId: other, userIds: [] });
    expect(await store.get(other)).toBeNull();
    expect(reads).toBe(2);
  });
});

describe.each(DATABASES)('ChannelStateStore presence on %s', (db) => {
  const suite = suiteContext(db);
  let ctx: INestApplicationContext;
  let n = 0;

  beforeAll(() => {
    ctx = suite.ctx;
  });

  async function accepted() {
    const users = ctx.get(UsersService);
    const [a, b] = await Promise.all([users.create(`pa${++n}`, 'x'), users.create(`pb${++n}`, 'x')]);
    const channels = ctx.get(ChannelsService);
    const created = await channels.create({ id: a.id, username: a.username }, { name: `pc${++n}`, visibility: 'private', members: [b.username] });
    await channels.accept({ id: b.id, username: b.username }, created.id);
    const bus = new LocalFanoutBus();
    const blocks = new BlocksService(ctx.get(DataSource), ctx.get(DatabaseWriter), users, bus);
    const store = new ChannelStateStore(ctx.get(DataSource), bus, blocks);
    await store.get(created.id);
    return { a, b, bus, blocks, store };
  }

  it('stops presence between two users when a block comes through the bus, either way, and brings it back with the unblock', async () => {
    const { a, b, bus, blocks, store } = await accepted();
    await blocks.of(b.id);
    expect(store.sharesPresence(a.id, b.id, 100)).toBe(true);
    const change = { blocker: { id: a.id, username: a.username }, blocked: { id: b.id, username: b.username } };
    bus.publish('block.changed', { ...change, blocking: true }); // applied as another instance's change is
    expect(store.peersOf(a.id, 100)).toEqual(new Set());
    expect(store.peersOf(b.id, 100)).toEqual(new Set());
    expect(store.sharesPresence(b.id, a.id, 100)).toBe(false);
    bus.publish('block.changed', { ...change, blocking: false });
    expect(store.peersOf(b.id, 100)).toEqual(new Set([a.id]));
  });

  it('shares no presence while neither user\'s blocks are known (a cache miss hides, never shows)', async () => {
    const { a, b, blocks, store } = await accepted();
    expect(store.peersOf(a.id, 100)).toEqual(new Set());
    await blocks.of(a.id);
    expect(store.peersOf(a.id, 100)).toEqual(new Set([b.id]));
  });
});
