import { jest } from '@jest/globals';
import { type INestApplicationContext, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { DATABASES, freshDatabaseUrl, suiteContext, testEnv } from '../../test/helpers/test-app.js';
import { AppModule } from '../app.module.js';
import type { AuthUser } from '../auth/auth.service.js';
import { ChannelsService } from '../channels/channels.service.js';
import { AppError } from '../common/app-error.js';
import { loadConfig } from '../config/app-config.js';
import { UsersService } from '../users/users.service.js';
import { MessageStore } from './message-store.js';
import { MessageWriter } from './message-writer.js';
import { MessagesService } from './messages.service.js';

/** The messages service on a real database (an SQLite file; PostgreSQL too when configured). */
describe.each(DATABASES)('MessagesService on %s', (db) => {
  const suite = suiteContext(db);
  let ctx: INestApplicationContext;
  let messages: MessagesService;
  let channels: ChannelsService;
  let users: UsersService;
  let n = 0;

  beforeAll(() => {
    ctx = suite.ctx;
    messages = ctx.get(MessagesService);
    channels = ctx.get(ChannelsService);
    users = ctx.get(UsersService);
  });

  const user = async (): Promise<AuthUser> => {
    const u = await users.create(`u${++n}_${Math.random().toString(36).slice(2, 6)}`, 'not-a-real-hash');
    return { id: u.id, username: u.username };
  };
  const channel = async (owner: AuthUser, members: AuthUser[] = []) =>
    (await channels.create(owner, { name: `c${++n}-${Math.random().toString(36).slice(2, 6)}`, visibility: 'public', members: members.map((m) => m.username) })).id;

  it('assigns gap-free seqs to hundreds of concurrent sends from several senders', async () => {
    const senders = await Promise.all([user(), user(), user(), user()]);
    const id = await channel(senders[0], senders.slice(1));
    const outcomes = await Promise.all(
      Array.from({ length: 400 }, (_, i) => messages.send(senders[i % 4], { channelId: id, text: `m${i}`, clientMsgId: `k${i}` })),
    );
    expect(outcomes.map((o) => o.message.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    const rows = await ctx.get(DataSource).query(`SELECT COUNT(*) AS n, MAX(seq) AS max FROM messages WHERE channel_id = '${id}'`);
    expect([Number(rows[0].n), Number(rows[0].max)]).toEqual([400, 400]);
  });

  it('numbers each channel on its own, also inside one batch', async () => {
    const a = await user();
    const [c1, c2] = [await channel(a), await channel(a)];
    const out = await Promise.all([1, 2, 3, 4].map((i) => messages.send(a, { channelId: i % 2 ? c1 : c2, text: 'x', clientMsgId: `mix-${i}` })));
    expect(out.map((o) => [o.message.channelId === c1 ? 'c1' : 'c2', o.message.seq])).toEqual([['c1', 1], ['c2', 1], ['c1', 2], ['c2', 2]]);
  });

  // One batch over several channels takes all their heads at once on PostgreSQL (takeHeads):
  // what each channel gets must not change, nor the refusal of one archived behind memory's back.
  it('takes several channels\' heads in one batch: seqs, revs, markers, a change, and an archived one refused alone', async () => {
    const [a, b] = [await user(), await user()];
    const [c1, c2, c3, c4] = [await channel(a, [b]), await channel(a, [b]), await channel(a, [b]), await channel(a, [b])];
    await messages.send(a, { channelId: c1, text: 'before', clientMsgId: 'th-0' });
    const edited = await messages.send(b, { channelId: c4, text: 'to edit', clientMsgId: 'th-e' });
    const ds = ctx.get(DataSource);
    // Archived in the database only (another instance, a bus round trip ago): memory lets the send in.
    await ds.query(`UPDATE channels SET archived_at = ${Date.now()} WHERE id = '${c3}'`);
    const sends = [c1, c2, c3, c1, c2].map((channelId, i) => messages.send(a, { channelId, text: `t${i}`, clientMsgId: `th-${i + 1}` }).catch((e: unknown) => e));
    const edit = messages.edit(b, c4, edited.message.seq, 'edited');
    const [out, change] = await Promise.all([Promise.all(sends), edit]);
    const ok = (o: unknown) => (o as { message: { channelId: string; seq: number; rev: number } }).message;
    expect([out[0], out[1], out[3], out[4]].map((o) => [ok(o).channelId, ok(o).seq, ok(o).rev])).toEqual([
      [c1, 2, 2],
      [c2, 1, 1],
      [c1, 3, 3],
      [c2, 2, 2],
    ]);
    expect(out[2]).toBeInstanceOf(AppError);
    expect((out[2] as AppError).code).toBe(AppError.archived().code);
    expect([change.changed, change.message.text, change.message.rev]).toEqual([true, 'edited', 2]);
    const rows = await ds.query(
      `SELECT c.id, c.head_seq, c.head_rev, m.last_read_seq FROM channels c JOIN memberships m ON m.channel_id = c.id AND m.user_id = '${a.id}' WHERE c.id IN ('${c1}', '${c2}', '${c3}', '${c4}')`,
    );
    const byChannel = Object.fromEntries(rows.map((r: Record<string, unknown>) => [r.id, [Number(r.head_seq), Number(r.head_rev), Number(r.last_read_seq)]]));
    expect(byChannel).toEqual({ [c1]: [3, 3, 3], [c2]: [2, 2, 2], [c3]: [0, 0, 0], [c4]: [1, 2, 0] });
  });

  it('is idempotent on (sender, clientMsgId): retries, also concurrent ones, return the original', async () => {
    const [a, b] = [await user(), await user()];
    const id = await channel(a, [b]);
    const first = await messages.send(a, { channelId: id, text: 'one', clientMsgId: 'same' });
    const again = await Promise.all([1, 2, 3].map(() => messages.send(a, { channelId: id, text: 'other text', clientMsgId: 'same' })));
    for (const o of again) expect(o).toEqual({ duplicate: true, message: first.message });
    const twins = await Promise.all([1, 2].map(() => messages.send(a, { channelId: id, text: 'twin', clientMsgId: 'twin' })));
    expect(twins.map((o) => o.duplicate).sort()).toEqual([false, true]);
    expect(twins[0].message.id).toBe(twins[1].message.id);
    // Another sender may use the same key.
    expect((await messages.send(b, { channelId: id, text: 'mine', clientMsgId: 'same' })).duplicate).toBe(false);
    const page = await messages.history(a, id, { limit: 50 });
    expect(page.messages.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it('counts unread exactly: head minus marker, own messages never unread, markers forward only', async () => {
    const [a, b] = [await user(), await user()];
    const id = await channel(a, [b]);
    for (let i = 0; i < 5; i++) await messages.send(a, { channelId: id, text: 'x', clientMsgId: `un-${i}` });
    const conv = async (u: AuthUser) => (await channels.conversations(u.id)).find((c) => c.channelId === id)!;
    expect(await conv(b)).toMatchObject({ headSeq: 5, lastReadSeq: 0, unreadCount: 5 });
    expect(await conv(a)).toMatchObject({ lastReadSeq: 5, unreadCount: 0 });
    expect(await messages.markRead(b, id, 2)).toMatchObject({ lastReadSeq: 2, unreadCount: 3 });
    expect(await messages.markRead(b, id, 1)).toMatchObject({ lastReadSeq: 2, unreadCount: 3 });
    await messages.send(b, { channelId: id, text: 'reply', clientMsgId: 'reply' });
    expect(await conv(b)).toMatchObject({ headSeq: 6, lastReadSeq: 6, unreadCount: 0 });
    expect(await conv(a)).toMatchObject({ headSeq: 6, lastReadSeq: 5, unreadCount: 1 });
  });

  it('keeps markers and heads in the database as in memory', async () => {
    const [a, b] = [await user(), await user()];
    const id = await channel(a, [b]);
    await messages.send(a, { channelId: id, text: 'x', clientMsgId: 'db-1' });
    await messages.send(a, { channelId: id, text: 'y', clientMsgId: 'db-2' });
    await messages.markRead(b, id, 1);
    const rows = await ctx.get(DataSource).query(
      `SELECT m.user_id, m.last_read_seq, c.head_seq FROM memberships m JOIN channels c ON c.id = m.channel_id WHERE c.id = '${id}'`,
    );
    const byUser = Object.fromEntries(rows.map((r: { user_id: string; last_read_seq: number; head_seq: number }) => [r.user_id, [Number(r.last_read_seq), Number(r.head_seq)]]));
    expect(byUser).toEqual({ [a.id]: [2, 2], [b.id]: [1, 2] });
  });

  it('pages by cursor in both directions', async () => {
    const a = await user();
    const id = await channel(a);
    for (let i = 1; i <= 10; i++) await messages.send(a, { channelId: id, text: `${i}`, clientMsgId: `cur-${i}` });
    const seqs = (p: { messages: { seq: number }[] }) => p.messages.map((m) => m.seq);
    expect(seqs(await messages.history(a, id, { limit: 3 }))).toEqual([8, 9, 10]);
    expect(seqs(await messages.history(a, id, { before: 8, limit: 3 }))).toEqual([5, 6, 7]);
    expect(seqs(await messages.history(a, id, { after: 8, limit: 3 }))).toEqual([9, 10]);
    expect(await messages.history(a, id, { after: 10, limit: 3 })).toMatchObject({ messages: [], hasMore: false });
    expect(await messages.sync(a, id, { seq: 7 })).toMatchObject({ headSeq: 10, hasMore: false });
  });

  it('splits a failing batch in halves: only the bad send fails, its neighbours pay a few transactions, not one each', async () => {
    const a = await user();
    const id = await channel(a);
    const store = ctx.get(MessageStore);
    const ds = ctx.get(DataSource);
    // A fault of one send: a trigger makes the database refuse its row, wherever the batch puts
    // it (on SQLite the batch runs in the writer thread, on its own connection: only the
    // database itself can fail it there).
    if (db === 'sqlite') {
      await ds.query(`CREATE TRIGGER refuse_split BEFORE INSERT ON messages WHEN NEW.client_msg_id = 'split-40' BEGIN SELECT RAISE(ABORT, 'refused by the database'); END`);
    } else {
      await ds.query(`CREATE FUNCTION refuse_split() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.client_msg_id = 'split-40' THEN RAISE EXCEPTION 'refused by the database'; END IF; RETURN NEW; END $$`);
      await ds.query('CREATE TRIGGER refuse_split BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_split()');
    }
    // Both lines reach the server's logger (on SQLite from the writer thread, through the main thread's).
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const error = jest.spyOn(Logger.prototype, 'error');
    try {
      const writer = ctx.get(MessageWriter);
      const before = store.transactions;
      // In one batch: 63 good sends and one the database refuses.
      const sends = Array.from({ length: 64 }, (_, i) => writer.write({ channelId: id, sender: a, text: `s${i}`, clientMsgId: `split-${i}` }));
      const settled = await Promise.allSettled(sends);
      expect(settled.filter((r) => r.status === 'rejected')).toHaveLength(1);
      expect((settled[40] as PromiseRejectedResult).reason).toMatchObject({ code: 'internal' });
      expect((settled[40] as PromiseRejectedResult).reason).toBeInstanceOf(AppError);
      const seqs = settled.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ message: { seq: number } }>).value.message.seq);
      expect(seqs).toEqual(Array.from({ length: 63 }, (_, i) => i + 1));
      expect(store.transactions - before).toBeGreaterThan(1);
      expect(store.transactions - before).toBeLessThanOrEqual(1 + 2 * 6);
      const stored = await ds.query(`SELECT client_msg_id FROM messages WHERE channel_id = '${id}'`);
      expect(stored.map((r: { client_msg_id: string }) => r.client_msg_id).sort()).toEqual(
        Array.from({ length: 64 }, (_, i) => `split-${i}`).filter((k) => k !== 'split-40').sort(),
      );
      expect(warn.mock.calls.map(([m]) => String(m))).toContainEqual(expect.stringMatching(/batch of 64 failed \(.*refused by the database.*\); splitting it/));
      expect(error.mock.calls.map(([m]) => String(m))).toContainEqual(expect.stringMatching(/send failed: .*refused by the database/));
    } finally {
      warn.mockRestore();
      error.mockRestore();
      await ds.query(db === 'sqlite' ? 'DROP TRIGGER refuse_split' : 'DROP TRIGGER refuse_split ON messages');
      if (db !== 'sqlite') await ds.query('DROP FUNCTION refuse_split()');
    }
  });

  it('refuses a send from a member who left elsewhere before this instance\'s memory heard of it', async () => {
    const [a, b] = await Promise.all([user(), user()]);
    const id = await channel(a, [b]);
    // The leave committed by another instance; its change has not reached this one yet.
    await ctx.get(DataSource).query(`DELETE FROM memberships WHERE channel_id = '${id}' AND user_id = '${b.id}'`);
    await expect(messages.send(b, { channelId: id, text: 'late', clientMsgId: 'late-1' })).rejects.toMatchObject({ code: 'forbidden' });
    expect((await messages.history(a, id, { limit: 5 })).messages).toEqual([]);
  });

  it('lets in a member who joined elsewhere before this instance\'s memory heard of it', async () => {
    const [a, b] = await Promise.all([user(), user()]);
    const id = await channel(a);
    await messages.history(a, id, { limit: 1 }); // the channel is cached without b
    await ctx.get(DataSource).query(`INSERT INTO memberships (channel_id, user_id, role, last_read_seq, joined_at) VALUES ('${id}', '${b.id}', 'member', 0, 0)`);
    expect((await messages.send(b, { channelId: id, text: 'early', clientMsgId: 'early-1' })).message.seq).toBe(1);
  });

  it('refuses non-members and unknown channels without storing anything', async () => {
    const [a, b] = [await user(), await user()];
    const id = await channel(a);
    await expect(messages.send(b, { channelId: id, text: 'x', clientMsgId: 'nm' })).rejects.toMatchObject({ code: 'forbidden' });
    await expect(messages.send(b, { channelId: '00000000-0000-4000-8000-000000000000', text: 'x', clientMsgId: 'nm' })).rejects.toBeInstanceOf(AppError);
    await expect(messages.history(b, id, { limit: 5 })).rejects.toMatchObject({ code: 'forbidden' });
    expect((await messages.history(a, id, { limit: 5 })).messages).toEqual([]);
  });
});

/** Two instances on one PostgreSQL database: the row lock on head_seq keeps seq gap-free. */
(DATABASES.includes('postgres') ? describe : describe.skip)('MessagesService, two instances on postgres', () => {
  const instances: INestApplicationContext[] = [];
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const fresh = freshDatabaseUrl('postgres');
    cleanup = fresh.cleanup;
    for (let i = 0; i < 2; i++) {
      const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(loadConfig(testEnv(fresh.url)))] }).compile();
      instances.push(await moduleRef.init());
    }
  });
  afterAll(async () => {
    for (const c of instances) await c.close();
    await cleanup();
  });

  it('keeps seq gap-free and clientMsgId idempotent across instances', async () => {
    const [one, two] = instances;
    const u = await one.get(UsersService).create(`multi_${Date.now().toString(36)}`, 'not-a-real-hash');
    const caller = { id: u.id, username: u.username };
    const { id } = await one.get(ChannelsService).create(caller, { name: `multi-${Date.now().toString(36)}`, visibility: 'public' });
    const sends = Array.from({ length: 300 }, (_, i) =>
      (i % 2 ? one : two).get(MessagesService).send(caller, { channelId: id, text: `m${i}`, clientMsgId: `k${i}` }),
    );
    // The same key sent to both instances at once is stored once.
    sends.push(one.get(MessagesService).send(caller, { channelId: id, text: 'dup', clientMsgId: 'both' }));
    sends.push(two.get(MessagesService).send(caller, { channelId: id, text: 'dup', clientMsgId: 'both' }));
    const out = await Promise.all(sends);
    const fresh = out.filter((o) => !o.duplicate).map((o) => o.message.seq).sort((a, b) => a - b);
    expect(fresh).toEqual(Array.from({ length: 301 }, (_, i) => i + 1));
    const both = out.slice(300);
    expect(both[0].message.id).toBe(both[1].message.id);
    expect(both.filter((o) => o.duplicate)).toHaveLength(1);
  });

  // Both instances' batches span the same channels, each in its own send order: the rows are
  // locked in one id order whatever that order (takeHeads), so no batch waits on the other in a
  // cycle. (PostgreSQL would abort one after deadlock_timeout; the split that follows stores its
  // sends anyway, a second later, and logs why.)
  it('locks several channels per batch in one order on both instances: no deadlock, every channel gap-free', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const [one, two] = instances;
    const u = await one.get(UsersService).create(`lock_${Date.now().toString(36)}`, 'not-a-real-hash');
    const caller = { id: u.id, username: u.username };
    const ids: string[] = [];
    for (let c = 0; c < 6; c++) ids.push((await one.get(ChannelsService).create(caller, { name: `lock-${c}-${Date.now().toString(36)}`, visibility: 'public' })).id);
    const reversed = [...ids].reverse();
    const out: { message: { channelId: string; seq: number } }[] = [];
    // Round by round: each round is one batch per instance, both in flight at once.
    for (let round = 0; round < 20; round++) {
      const sends = [one, two].flatMap((instance, k) =>
        (k ? reversed : ids).map((channelId) => instance.get(MessagesService).send(caller, { channelId, text: 'x', clientMsgId: `l${round}-${k}-${channelId}` })),
      );
      out.push(...(await Promise.all(sends)));
    }
    const deadlocks = warn.mock.calls.map(([m]) => String(m)).filter((m) => m.includes('deadlock'));
    warn.mockRestore();
    expect(deadlocks).toEqual([]);
    for (const channelId of ids) {
      const seqs = out.filter((o) => o.message.channelId === channelId).map((o) => o.message.seq).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    }
  });

  // Two batches in flight per instance, over disjoint channels (MessageWriter): a channel whose
  // row lock is held elsewhere (here by an open transaction; in production another instance's
  // batch) holds up its own sends only, and a channel's later send still waits for its earlier one.
  it('writes another channel while one waits for its row lock, and keeps the waiting channel in order', async () => {
    const [one] = instances;
    const u = await one.get(UsersService).create(`flight_${Date.now().toString(36)}`, 'not-a-real-hash');
    const caller = { id: u.id, username: u.username };
    const create = async (name: string) => (await one.get(ChannelsService).create(caller, { name: `${name}-${Date.now().toString(36)}`, visibility: 'public' })).id;
    const [held, free] = [await create('held'), await create('free')];
    const send = (channelId: string, key: string) => one.get(MessagesService).send(caller, { channelId, text: key, clientMsgId: key });
    const holder = one.get(DataSource).createQueryRunner();
    await holder.connect();
    await holder.startTransaction();
    try {
      await holder.query('SELECT id FROM channels WHERE id = $1 FOR UPDATE', [held]);
      let heldDone = false;
      const first = send(held, 'f1').finally(() => (heldDone = true));
      await new Promise((resolve) => setTimeout(resolve, 50)); // its batch is in the database, waiting
      const second = send(held, 'f2');
      let timer: NodeJS.Timeout | undefined;
      const other = await Promise.race([send(free, 'f3'), new Promise((resolve) => (timer = setTimeout(() => resolve('still waiting'), 5000)))]);
      clearTimeout(timer);
      expect(other).toMatchObject({ message: { channelId: free, seq: 1 } });
      expect(heldDone).toBe(false);
      await holder.commitTransaction();
      expect([(await first).message.seq, (await second).message.seq]).toEqual([1, 2]);
    } finally {
      if (holder.isTransactionActive) await holder.rollbackTransaction();
      await holder.release();
    }
  });
});
