// Scenario 3: idle authenticated connections. Opens 10,000 then 19,000
// connections (many per user; the users share no channel, so there is no
// presence fan-out) and reads the server's heap (after forced GC, via the
// probe) and RSS against its idle baseline.
import { Group } from '../lib/workers.mjs';
import { startTarget } from '../lib/targets.mjs';
import { tokenFor } from '../lib/parley.mjs';
import { sleep } from '../lib/util.mjs';

const PER_WORKER = 5000; // client processes stay far below their own fd limit

export async function run(ctx) {
  let levels = ctx.quick ? [1000, 2000] : [10_000, 19_000];
  // The server needs one descriptor per connection plus its own (~100).
  const room = ctx.fdLimit - 300;
  let note;
  if (levels.at(-1) > room) {
    levels = levels.map((n) => Math.floor((n * room) / levels.at(-1)));
    note = `fd limit ${ctx.fdLimit}: scaled down to ${levels.join(' and ')} connections`;
    ctx.notes.push(`connections: ${note}`);
  }
  const out = { levels, note, servers: {} };
  for (const kind of ctx.kinds.filter((k) => k !== 'sio')) {
    ctx.log(`connections: ${kind}`);
    try { out.servers[kind] = await runOne(ctx, kind, levels); }
    catch (e) { out.servers[kind] = { error: String(e.message || e) }; ctx.log(`connections ${kind} failed: ${e.stack || e}`); }
  }
  return out;
}

async function runOne(ctx, kind, levels) {
  const t = await startTarget(ctx, kind);
  const tokens = ctx.users.idle.map(tokenFor);
  const g = new Group(Math.ceil(levels.at(-1) / PER_WORKER), 'idle');
  try {
    await sleep(500);
    const base = await t.srv.stats({ gc: true });
    const res = { baseline: { heapUsed: base.heapUsed, rss: base.rss }, levels: [] };
    let have = 0;
    for (const n of levels) {
      const add = Array.from({ length: n - have }, (_, i) => tokens[(have + i) % tokens.length]);
      // Several source addresses keep clear of ephemeral-port reuse on loopback.
      const c = await g.connect(add, { base: t.base, framing: t.framing, concurrency: 64, localAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'] });
      have += c.connected;
      await sleep(ctx.quick ? 500 : 1500); // let start-up work (presence, timers) settle
      const s = await t.srv.stats({ gc: true });
      const open = (await g.snap()).open;
      const lv = {
        connections: have, open, failed: c.failed, errors: c.errors.slice(0, 3), connectSeconds: c.ms / 1000, connectsPerSec: Math.round(c.connected / (c.ms / 1000)),
        heapUsed: s.heapUsed, rss: s.rss,
        heapPerConn: Math.round((s.heapUsed - base.heapUsed) / have),
        rssPerConn: Math.round((s.rss - base.rss) / have),
      };
      if (kind === 'parley') lv.metricsHeap = await metricsHeap(t.srv.url);
      res.levels.push(lv);
      ctx.log(`  ${kind} ${have} conns (${open} open): heap/conn ${lv.heapPerConn} B, rss/conn ${lv.rssPerConn} B, ${lv.connectsPerSec} connects/s`);
      if (c.failed) break;
    }
    return res;
  } finally {
    await g.kill();
    await t.srv.stop();
  }
}

// prom-client's default metric, when Parley serves /metrics (no forced GC there).
async function metricsHeap(url) {
  try {
    const r = await fetch(`${url}/metrics`);
    if (!r.ok) return null;
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)/m.exec(await r.text());
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

export function report(r, { table, ratio, LABEL }) {
  const rows = [];
  for (const [k, v] of Object.entries(r.servers)) {
    if (v.error) { rows.push({ server: LABEL[k], error: v.error.slice(0, 80) }); continue; }
    for (const lv of v.levels) rows.push({
      server: LABEL[k], connections: lv.connections, open: lv.open, 'heap/conn B': lv.heapPerConn, 'rss/conn B': lv.rssPerConn,
      'heap MB': Math.round(lv.heapUsed / 2 ** 20), 'rss MB': Math.round(lv.rss / 2 ** 20), 'connects/s': lv.connectsPerSec,
    });
  }
  const ratios = {};
  const p = r.servers.parley?.levels?.at(-1), w = r.servers.ws?.levels?.at(-1);
  if (p && w) {
    ratios[`Parley/ws-ref heap per connection at ${p.connections} (lower is better)`] = ratio(p.heapPerConn, w.heapPerConn);
    ratios[`Parley/ws-ref RSS per connection at ${p.connections} (lower is better)`] = ratio(p.rssPerConn, w.rssPerConn);
  }
  return { text: table(`Idle connections${r.note ? ` (${r.note})` : ''}: per-connection cost over the idle baseline, after GC`, rows), ratios };
}
