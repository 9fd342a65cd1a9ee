// Scenario: message search (protocol v1.1) on 100,000 messages. GET /search/messages for a
// handful of query kinds, one client at a time (latency), then 8 at a time (throughput).
// The messages go straight into SQLite; Parley indexes them when it starts (the batches it
// writes a second after sends, see MessageStore.indexPending), then serves the searches.
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { startTarget } from '../lib/targets.mjs';
import { createChannel, tokenFor, api } from '../lib/parley.mjs';
import { Hist, nowUs, pool } from '../lib/util.mjs';

const MESSAGES = 100_000;
const CHANNELS = 20;
const REQUESTS = 300;

// A vocabulary with a Zipf-like spread: a few words in most messages, most words in few.
const WORDS = Array.from({ length: 5000 }, (_, i) => `w${i.toString(36)}${'aeiou'[i % 5]}`);
const COMMON = ['lunch', 'meeting', 'today', 'deploy', 'thanks'];
function text(rand) {
  const n = 6 + Math.floor(rand() * 14);
  const parts = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    parts.push(r < 0.08 ? COMMON[Math.floor(rand() * COMMON.length)] : WORDS[Math.floor(WORDS.length * Math.pow(rand(), 2.2))]);
  }
  return parts.join(' ');
}
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const QUERIES = {
  'common word (~10% of messages)': 'lunch',
  'two words': 'deploy thanks',
  'prefix': 'meet',
  'mid-frequency word': WORDS[400],
  'rare word': WORDS[4900],
  'no match': 'zzzzqqq',
};

export async function run(ctx) {
  if (!ctx.parley) return { skipped: 'Parley not available', servers: {} };
  const [user] = ctx.users.hist;
  const token = tokenFor(user);
  const out = { messages: MESSAGES, channels: CHANNELS, requests: ctx.quick ? 60 : REQUESTS, servers: {} };

  let t = await startTarget(ctx, 'parley');
  const channels = [];
  try {
    for (let i = 0; i < CHANNELS; i++) channels.push(await createChannel(t.srv, `bench-search-${i}`, [user]));
  } finally { await t.srv.stop(); }

  ctx.log(`search: inserting ${MESSAGES} messages`);
  const db = new Database(ctx.dbFile);
  const t0 = Date.now();
  try {
    const rand = rng(42);
    const ins = db.prepare('INSERT INTO messages (id, channel_id, seq, rev, sender_id, text, client_msg_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const head = db.prepare('UPDATE channels SET head_seq = ?, head_rev = ? WHERE id = ?');
    db.transaction(() => {
      const per = MESSAGES / CHANNELS;
      for (let c = 0; c < CHANNELS; c++) {
        for (let s = 1; s <= per; s++) ins.run(randomUUID(), channels[c], s, s, user.id, text(rand), `s-${c}-${s}`, Date.now());
        head.run(per, per, channels[c]);
      }
    })();
  } finally { db.close(); }
  out.insertSeconds = Math.round((Date.now() - t0) / 100) / 10;

  t = await startTarget(ctx, 'parley');
  try {
    const res = {};
    for (const [kind, q] of Object.entries(QUERIES)) {
      const path = `/search/messages?q=${encodeURIComponent(q)}&limit=20`;
      const first = await api(t.srv, 'GET', path, token);
      for (let i = 0; i < 10; i++) await api(t.srv, 'GET', path, token); // warm-up
      const one = new Hist();
      for (let i = 0; i < out.requests; i++) {
        const s = nowUs();
        await api(t.srv, 'GET', path, token);
        one.record(nowUs() - s);
      }
      const eight = new Hist();
      const s8 = nowUs();
      await pool(Array.from({ length: out.requests }, (_, i) => i), 8, async () => {
        const s = nowUs();
        await api(t.srv, 'GET', path, token);
        eight.record(nowUs() - s);
      });
      const perSec = Math.round(out.requests / ((nowUs() - s8) / 1e6));
      const [a, b] = [one.summaryMs(), eight.summaryMs()];
      res[kind] = { q, hits: first.hits.length, more: first.nextCursor !== null, p50: a.p50, p99: a.p99, p50at8: b.p50, p99at8: b.p99, perSecAt8: perSec };
      ctx.log(`  ${kind} "${q}": ${first.hits.length} hits, p50 ${res[kind].p50} ms, p99 ${res[kind].p99} ms; 8 at a time ${perSec}/s, p99 ${res[kind].p99at8} ms`);
    }
    out.servers.parley = res;
  } finally { await t.srv.stop(); }
  return out;
}

export function report(r, { table }) {
  if (r.skipped) return { text: table(`Search (skipped: ${r.skipped})`, []), ratios: {} };
  const rows = Object.entries(r.servers.parley).map(([kind, v]) => ({
    query: kind, hits: `${v.hits}${v.more ? '+' : ''}`, 'p50 ms': v.p50, 'p99 ms': v.p99, 'p50 ms (8 conc.)': v.p50at8, 'p99 ms (8 conc.)': v.p99at8, 'req/s (8 conc.)': v.perSecAt8,
  }));
  return { text: table(`Search on ${r.messages.toLocaleString('en')} messages in ${r.channels} channels (SQLite FTS5)`, rows), ratios: {} };
}
