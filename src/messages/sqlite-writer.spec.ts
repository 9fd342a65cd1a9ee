import type { INestApplicationContext } from '@nestjs/common';
import Database from 'better-sqlite3';
import { Test } from '@nestjs/testing';
import { freshDatabaseUrl, suiteContext, testEnv } from '../../test/helpers/test-app.js';
import { AppModule } from '../app.module.js';
import type { AuthUser } from '../auth/auth.service.js';
import { ChannelsService } from '../channels/channels.service.js';
import { AppError } from '../common/app-error.js';
import { AppConfig, loadConfig } from '../config/app-config.js';
import { UsersService } from '../users/users.service.js';
import { MessageStore } from './message-store.js';
import { MessageWriter } from './message-writer.js';
import { MessagesService } from './messages.service.js';

/**
 * The SQLite writer thread (sqlite-writer.ts): the message batches commit there, on a connection
 * of its own, and an ack still means "on disk". Each check reads the file through yet another
 * connection, opened by the test, as a restarted server would.
 */
describe('SQLite writer thread', () => {
  const suite = suiteContext('sqlite');
  let n = 0;

  const file = () => {
    const db = suite.ctx.get(AppConfig).database;
    if (db.type !== 'sqlite') throw new Error('sqlite only');
    return db.file;
  };
  /** Rows of a channel, read from the file by a connection of the test's own. */
  const onDisk = (channelId: string): { client_msg_id: string; seq: number }[] => {
    const db = new Database(file(), { readonly: true });
    try {
      return db.prepare('SELECT client_msg_id, seq FROM messages WHERE channel_id = ? ORDER BY seq').all(channelId) as { client_msg_id: string; seq: number }[];
    } finally {
      db.close();
    }
  };
  const user = async (): Promise<AuthUser> => {
    const u = await suite.ctx.get(UsersService).create(`w${++n}_${Math.random().toString(36).slice(2, 6)}`, 'not-a-real-hash');
    return { id: u.id, username: u.username };
  };
  const channel = async (owner: AuthUser, members: AuthUser[] = []) =>
    (await suite.ctx.get(ChannelsService).create(owner, { name: `w${++n}-${Math.random().toString(36).slice(2, 6)}`, visibility: 'public', members: members.map((m) => m.username) }))
      .id;

  it('acknowledges a send only once it is committed: another connection reads it right after the ack', async () => {
    const a = await user();
    const id = await channel(a);
    const writer = suite.ctx.get(MessageWriter);
    for (let i = 0; i < 3; i++) {
      const { message } = await writer.write({ channelId: id, sender: a, text: `m${i}`, clientMsgId: `disk-${i}` });
      expect(onDisk(id).at(-1)).toEqual({ client_msg_id: `disk-${i}`, seq: message.seq });
    }
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => writer.write({ channelId: id, sender: a, text: 'x', clientMsgId: `many-${i}` })));
    expect(onDisk(id).map((r) => r.seq)).toEqual(expect.arrayContaining(acks.map((o) => o.message.seq)));
  });

  it('fails a refused request alone, with the AppError the thread found (rebuilt on this side)', async () => {
    const [a, b] = [await user(), await user()];
    const id = await channel(a);
    const writer = suite.ctx.get(MessageWriter);
    // One batch: b is no member; a's sends around it commit.
    const settled = await Promise.allSettled([
      writer.write({ channelId: id, sender: a, text: '1', clientMsgId: 'ok-1' }),
      writer.write({ channelId: id, sender: b, text: '2', clientMsgId: 'no-1' }),
      writer.write({ channelId: id, sender: a, text: '3', clientMsgId: 'ok-2' }),
      writer.change({ channelId: id, seq: 99, actor: a, op: 'edit', text: 'x', mentions: [] }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    const [, refused, , missing] = settled as PromiseRejectedResult[];
    expect(refused.reason).toBeInstanceOf(AppError);
    expect(refused.reason).toMatchObject({ code: 'forbidden' });
    expect(missing.reason).toBeInstanceOf(AppError);
    expect(missing.reason).toMatchObject({ code: 'not_found' });
    expect(onDisk(id)).toEqual([
      { client_msg_id: 'ok-1', seq: 1 },
      { client_msg_id: 'ok-2', seq: 2 },
    ]);
  });

  it('runs a batch again on a new thread when its thread dies before COMMIT: all acknowledged once, gap-free', async () => {
    const a = await user();
    const id = await channel(a);
    const writer = suite.ctx.get(MessageWriter);
    await writer.write({ channelId: id, sender: a, text: 'before', clientMsgId: 'before' });
    suite.ctx.get(MessageStore).crashWriterOnNextBatches('before-commit');
    const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => writer.write({ channelId: id, sender: a, text: 'kept', clientMsgId: `crash-${i}` })));
    expect(acks.map((o) => [o.duplicate, o.message.seq])).toEqual(Array.from({ length: 20 }, (_, i) => [false, i + 2]));
    expect(onDisk(id)).toHaveLength(21);
  });

  it('when the thread dies after COMMIT, before its reply: the committed batch is acknowledged as new and fanned out, not answered `internal`', async () => {
    const [a, b] = [await user(), await user()];
    const id = await channel(a, [b]);
    const writer = suite.ctx.get(MessageWriter);
    const first = await writer.write({ channelId: id, sender: a, text: 'first', clientMsgId: 'after-0' });
    // A quoted message, deleted in the crashed batch: the quote it empties is announced with it.
    const quoted = await writer.write({ channelId: id, sender: b, text: 'quoted', clientMsgId: 'quoted' });
    const reply = await writer.write({ channelId: id, sender: a, text: 'a reply', clientMsgId: 'reply', replyToSeq: quoted.message.seq });
    const fannedOut: number[] = [];
    const updates: [number, number][] = [];
    const hook = writer.onCommitted;
    writer.onCommitted = (created, updated, origin) => {
      fannedOut.push(...created.filter((m) => m.channelId === id).map((m) => m.seq));
      updates.push(...updated.filter((m) => m.channelId === id).map((m): [number, number] => [m.seq, m.rev]));
      hook(created, updated, origin);
    };
    try {
      suite.ctx.get(MessageStore).crashWriterOnNextBatches('after-commit');
      const settled = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) => writer.write({ channelId: id, sender: a, text: 'committed', clientMsgId: `after-${i + 1}` })),
        writer.change({ channelId: id, seq: first.message.seq, actor: b, op: 'react', emoji: '👍', add: true }),
        writer.change({ channelId: id, seq: quoted.message.seq, actor: b, op: 'delete' }),
      ]);
      const sends = settled.slice(0, 10) as { duplicate: boolean; message: { seq: number } }[];
      expect(sends.map((o) => [o.duplicate, o.message.seq])).toEqual(Array.from({ length: 10 }, (_, i) => [false, i + 4]));
      expect(fannedOut).toEqual(Array.from({ length: 10 }, (_, i) => i + 4));
      // The reaction and the delete were committed by the dead run: each is answered as the
      // change it made, once, and the delete's emptied quote goes out with it (revs 14, 15, 16).
      expect(settled[10]).toMatchObject({ changed: true, message: { rev: 14, reactions: [{ emoji: '👍', count: 1 }] } });
      expect(settled[11]).toMatchObject({ changed: true, message: { rev: 15, deleted: true }, quotes: [{ seq: reply.message.seq, rev: 16, replyTo: { text: '', deleted: true } }] });
      expect(updates).toEqual([[1, 14], [2, 15], [3, 16]]);
      expect(onDisk(id).map((r) => r.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
      // A real retry later is a duplicate again, and so is the delete (no quotes this time).
      expect(await writer.write({ channelId: id, sender: a, text: 'committed', clientMsgId: 'after-3' })).toMatchObject({ duplicate: true, message: { seq: 6 } });
      const again = await writer.change({ channelId: id, seq: quoted.message.seq, actor: b, op: 'delete' });
      expect(again).toMatchObject({ changed: false, message: { rev: 15 } });
      expect(again.quotes).toBeUndefined();
    } finally {
      writer.onCommitted = hook;
    }
  });

  it('fails the batch with `internal` when the thread dies on the second run too, and starts a new thread', async () => {
    const a = await user();
    const id = await channel(a);
    const writer = suite.ctx.get(MessageWriter);
    await writer.write({ channelId: id, sender: a, text: 'before', clientMsgId: 'before' });
    suite.ctx.get(MessageStore).crashWriterOnNextBatches('before-commit', 'before-commit');
    const settled = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => writer.write({ channelId: id, sender: a, text: 'lost', clientMsgId: `twice-${i}` })));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    for (const s of settled as PromiseRejectedResult[]) {
      expect(s.reason).toBeInstanceOf(AppError);
      expect(s.reason).toMatchObject({ code: 'internal' });
    }
    expect(onDisk(id)).toEqual([{ client_msg_id: 'before', seq: 1 }]);
    // A new thread: the retries are stored, gap-free after what was committed.
    const retried = await Promise.all(Array.from({ length: 20 }, (_, i) => writer.write({ channelId: id, sender: a, text: 'again', clientMsgId: `twice-${i}` })));
    expect(retried.map((o) => [o.duplicate, o.message.seq])).toEqual(Array.from({ length: 20 }, (_, i) => [false, i + 2]));
    expect(onDisk(id)).toHaveLength(21);
  });
});

describe('SQLite writer thread at shutdown', () => {
  it('commits every queued send before the app closes: all acknowledged, all on disk', async () => {
    const fresh = freshDatabaseUrl('sqlite');
    const ctx = await (await Test.createTestingModule({ imports: [AppModule.forRoot(loadConfig(testEnv(fresh.url)))] }).compile()).init();
    try {
      const u = await ctx.get(UsersService).create('closer', 'not-a-real-hash');
      const a = { id: u.id, username: u.username };
      const { id } = await ctx.get(ChannelsService).create(a, { name: 'closing', visibility: 'public' });
      const writer = ctx.get(MessageWriter);
      // More than one batch (MAX_BATCH 2000), queued, then the app closes at once.
      const sends = Array.from({ length: 2500 }, (_, i) => writer.write({ channelId: id, sender: a, text: `m${i}`, clientMsgId: `close-${i}` }));
      await ctx.close();
      const acks = await Promise.all(sends);
      expect(acks.map((o) => o.message.seq)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
      // A send that comes after the close is refused with a stable code, not stored and not lost in silence.
      await expect(writer.write({ channelId: id, sender: a, text: 'late', clientMsgId: 'close-late' })).rejects.toMatchObject({ code: 'unavailable' });
      const file = fresh.url.slice('sqlite:'.length);
      const db = new Database(file, { readonly: true });
      try {
        expect(db.prepare('SELECT count(*) AS n, max(seq) AS top FROM messages WHERE channel_id = ?').get(id)).toEqual({ n: 2500, top: 2500 });
      } finally {
        db.close();
      }
    } finally {
      await fresh.cleanup();
    }
  });
});

describe('SQLite in memory (no writer thread: a worker cannot share the database)', () => {
  let ctx: INestApplicationContext;
  beforeAll(async () => {
    ctx = await (await Test.createTestingModule({ imports: [AppModule.forRoot(loadConfig(testEnv('sqlite::memory:')))] }).compile()).init();
  });
  afterAll(() => ctx.close());

  it('runs the same batch on the main connection: sends, refusals, history and search', async () => {
    const mk = async (name: string) => {
      const u = await ctx.get(UsersService).create(name, 'not-a-real-hash');
      return { id: u.id, username: u.username };
    };
    const [a, b] = [await mk('mem_a'), await mk('mem_b')];
    const { id } = await ctx.get(ChannelsService).create(a, { name: 'memory', visibility: 'public' });
    const writer = ctx.get(MessageWriter);
    const settled = await Promise.allSettled([
      writer.write({ channelId: id, sender: a, text: 'apple pie', clientMsgId: 'm1' }),
      writer.write({ channelId: id, sender: b, text: 'not a member', clientMsgId: 'm2' }),
      writer.write({ channelId: id, sender: a, text: 'banana bread', clientMsgId: 'm3' }),
    ]);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'forbidden' });
    const messages = ctx.get(MessagesService);
    expect((await messages.history(a, id, { limit: 10 })).messages.map((m) => m.text)).toEqual(['apple pie', 'banana bread']);
    expect((await messages.search(a, { q: 'banana', limit: 10 })).hits.map((h) => h.message.seq)).toEqual([2]);
  });
});
