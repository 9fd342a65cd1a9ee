import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { createChannel, DATABASES, registerUser, suiteApp, TestApp, TestUser } from './helpers/test-app.js';
import { Frame, TestClient } from './helpers/ws-client.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- wire messages */

/**
 * The promise of protocol v1.1, as a property: whatever sends, edits, deletes and reactions happen
 * while a client is away, and while it resumes (paging by {seq, rev} with small pages, live frames
 * arriving at the same time), the client ends with exactly the server's state, message for message.
 * FUZZ_SEED replays a run; FUZZ_RUNS scales the number of runs.
 */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Math.max(1, Math.round(12 * Number(process.env.FUZZ_RUNS ?? 1)));

type Op =
  | { kind: 'send'; actor: number; reply: number | null; mention: boolean }
  | { kind: 'edit'; actor: number; target: number; text: string }
  | { kind: 'delete'; actor: number; target: number }
  | { kind: 'react'; actor: number; target: number; emoji: string; add: boolean };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), actor: fc.nat(2), reply: fc.option(fc.nat(40)), mention: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('edit' as const), actor: fc.nat(2), target: fc.nat(40), text: fc.constantFrom('edited', 'changed again', 'v3') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), actor: fc.nat(2), target: fc.nat(40) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('react' as const), actor: fc.nat(2), target: fc.nat(40), emoji: fc.constantFrom('👍', ':tada:', '❤️'), add: fc.boolean() }) },
);

describe.each(DATABASES)(`resume after changes, a property, on %s (FUZZ_SEED=${SEED})`, (db) => {
  const suite = suiteApp(db);
  let t: TestApp;
  let users: TestUser[];
  beforeAll(async () => {
    t = suite.t;
    users = await Promise.all([0, 1, 2].map(() => registerUser(t, 'prop')));
  });

  /** Runs one operation over HTTP; refusals (a stranger's edit, a tombstone's reaction) are part of the game. */
  async function run(channelId: string, o: Op, headSeq: () => number): Promise<void> {
    const u = users[o.actor];
    const seq = (n: number) => 1 + (n % Math.max(1, headSeq()));
    let res;
    if (o.kind === 'send') {
      const body: Record<string, unknown> = { text: o.mention ? `hey @${users[(o.actor + 1) % 3].username}` : `m ${randomUUID().slice(0, 6)}`, clientMsgId: randomUUID() };
      if (o.reply !== null && headSeq() > 0) body.replyToSeq = seq(o.reply);
      res = await t.http().post(`/channels/${channelId}/messages`).set(u.auth).send(body);
    } else if (headSeq() === 0) {
      return;
    } else if (o.kind === 'edit') {
      res = await t.http().patch(`/channels/${channelId}/messages/${seq(o.target)}`).set(u.auth).send({ text: `${o.text} @${users[o.target % 3].username}` });
    } else if (o.kind === 'delete') {
      res = await t.http().delete(`/channels/${channelId}/messages/${seq(o.target)}`).set(u.auth);
    } else {
      const path = `/channels/${channelId}/messages/${seq(o.target)}/reactions/${encodeURIComponent(o.emoji)}`;
      res = await (o.add ? t.http().put(path) : t.http().delete(path)).set(u.auth);
    }
    expect(res.status).toBeLessThan(500);
  }

  /** What the server holds: every message's current state, from history. */
  async function serverState(u: TestUser, channelId: string): Promise<Map<number, any>> {
    const state = new Map<number, any>();
    for (let after = 0; ; ) {
      const page = (await t.http().get(`/channels/${channelId}/messages?after=${after}&limit=200`).set(u.auth).expect(200)).body;
      for (const m of page.messages) state.set(m.seq, m);
      if (!page.hasMore) return state;
      after = page.messages[page.messages.length - 1].seq;
    }
  }

  it('a client that resumes by {seq, rev} ends with exactly the server\'s messages', async () => {
    const details = await fc.check(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), fc.array(op, { maxLength: 15 }), fc.array(op, { maxLength: 15 }), fc.integer({ min: 1, max: 4 }), async (before, away, during, limit) => {
        const [reader] = users.slice(2);
        const channelId = await createChannel(t, users[0], users.slice(1));
        let head = 0;
        const headSeq = () => head;
        const track = async (o: Op) => {
          await run(channelId, o, headSeq);
          if (o.kind === 'send') head = (await t.http().get(`/channels/${channelId}/messages?limit=1`).set(users[0].auth).expect(200)).body.messages[0]?.seq ?? head;
        };
        // The client's copy: per seq, the state with the highest rev it has seen.
        const held = new Map<number, any>();
        const apply = (m: any) => {
          const cur = held.get(m.seq);
          if (!cur || cur.rev < m.rev) held.set(m.seq, m);
        };
        let cursor = { seq: 0, rev: 0 };
        const { client } = await TestClient.connect(t.wsUrl, reader.token);
        const resume = async (c: TestClient, tag: string) => {
          for (let page = 0; ; page++) {
            const ref = `${tag}-${page}`;
            c.send('sync', { channels: { [channelId]: cursor }, limit, ref });
            const r = await c.next('sync.result', (d) => d.ref === ref, 10_000);
            for (const m of [...r.changes, ...r.messages]) {
              apply(m);
              cursor = { seq: Math.max(cursor.seq, m.seq), rev: Math.max(cursor.rev, m.rev) };
            }
            if (!r.hasMore) return r;
          }
        };
        for (const o of before) await track(o);
        await resume(client, 'first');
        await client.close();
        for (const o of away) await track(o);
        // Back: resume while more changes happen, and apply the live frames as they come.
        const { client: back } = await TestClient.connect(t.wsUrl, reader.token);
        suite.track(back);
        back.ws.on('message', (raw) => {
          const f = JSON.parse(raw.toString()) as Frame;
          if ((f.event === 'message.new' || f.event === 'message.updated') && f.data.message.channelId === channelId) apply(f.data.message);
        });
        await Promise.all([resume(back, 'back'), (async () => { for (const o of during) await track(o); })()]);
        // Everything committed has been announced; wait for the live frames to land.
        const server = await serverState(users[0], channelId);
        const maxRev = Math.max(0, ...[...server.values()].map((m) => m.rev));
        for (let i = 0; i < 200 && Math.max(0, ...[...held.values()].map((m) => m.rev)) < maxRev; i++) await new Promise((r) => setTimeout(r, 10));
        expect([...held.entries()].sort((a, b) => a[0] - b[0])).toEqual([...server.entries()].sort((a, b) => a[0] - b[0]));
        await back.close();
      }),
      { seed: SEED, numRuns: RUNS },
    );
    if (details.failed) {
      throw new Error(`property failed: replay with FUZZ_SEED=${SEED} (path ${details.counterexamplePath})\n${JSON.stringify(details.counterexample)?.slice(0, 3000)}\n${String(details.errorInstance)}`);
    }
  });
});
