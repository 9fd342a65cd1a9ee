// Scenario 6: cluster. What cross-instance delivery costs. One channel of 1,000
// members on PostgreSQL; one member sends 100-byte messages open-loop at 50
// msg/s (50,000 deliveries/s). Two phases in one run, same schema, same users,
// same channel, same load generators:
//   single:  one Parley instance (A), PostgreSQL, no Redis: the sender and all
//            999 receivers on A (the one-instance deployment a cluster replaces);
//   cluster: instances A and B on the same schema and a Redis of the harness's
//            own; the sender on A, the receivers split evenly, half on A (same
//            instance as the sender), half on B (cross-instance).
// Latency is the fan-out scenario's: from the message's intended send time to
// the receipt of its message.new, recorded per receiver process, so A's and B's
// receivers have histograms of their own (one load-generator process each).
// The figure that matters: B's p99 minus the single instance's p99 (goal: at
// most +5 ms), and B minus A within the cluster phase (same messages).
import { Group } from '../lib/workers.mjs';
import { startRedis } from '../lib/servers.mjs';
import { startParley, createChannel, tokenFor, withPg, resetPgSchema, seedPgUsers } from '../lib/parley.mjs';
import { Hist, sleep, nowUs, waitFor, machineCpu, machineCoresSince, waitQuiet, procCpuSec } from '../lib/util.mjs';
import { readdirSync, readFileSync } from 'node:fs';

const TARGET = 50_000; // deliveries/s
const GOAL_MS = 5; // cross-instance p99 minus single-instance p99
const SCHEMA = 'bench_cluster';
const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/test';

// PostgreSQL: BENCH_PG_URL, else DATABASE_URL when it is postgres://, else the
// local default; always in the harness's own schema (dropped and recreated).
function pgBaseUrl() {
  const raw = process.env.BENCH_PG_URL || (/^postgres(ql)?:\/\//.test(process.env.DATABASE_URL || '') ? process.env.DATABASE_URL : DEFAULT_PG);
  const u = new URL(raw);
  u.searchParams.delete('schema');
  return u.toString();
}
const redact = (url) => { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); };

export async function run(ctx) {
  if (!ctx.parley) return { skipped: 'Parley not available' };
  const users = ctx.users.fan;
  const pgUrl = pgBaseUrl();
  try { await withPg(pgUrl, null, (c) => c.query('SELECT 1')); }
  catch (e) { return { skipped: `PostgreSQL not reachable at ${redact(pgUrl)} (${e.message}); set BENCH_PG_URL` }; }
  const dbUrl = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=${SCHEMA}`;
  let redis;
  if (process.env.BENCH_REDIS_URL) redis = { url: process.env.BENCH_REDIS_URL, cpuSec: () => 0, stop: async () => {} };
  else {
    try { redis = await startRedis({ logDir: ctx.logDir, name: 'cluster-redis' }); }
    catch (e) { return { skipped: String(e.message) }; }
  }
  const out = {
    members: users.length, messageBytes: 100, targetDeliveriesPerSec: TARGET, goalMs: GOAL_MS,
    database: redact(dbUrl), redis: process.env.BENCH_REDIS_URL ? 'BENCH_REDIS_URL' : 'own redis-server', phases: {},
  };
  const servers = [];
  try {
    // Schema, users and channel, through a first instance (it runs the migrations).
    await resetPgSchema(pgUrl, SCHEMA);
    const solo = await startParley({ logDir: ctx.logDir, name: 'cluster-single', env: { DATABASE_URL: dbUrl, REDIS_URL: '' } });
    servers.push(solo);
    await seedPgUsers(pgUrl, SCHEMA, users);
    const channelId = await createChannel(solo, 'bench-cluster', users);
    ctx.log(`cluster: schema ${SCHEMA} seeded, channel of ${users.length} members`);

    ctx.log('cluster: single instance (PostgreSQL, no Redis)');
    out.phases.single = await phase(ctx, { users, channelId, a: solo, b: solo, servers: [solo], redis: null });
    await solo.stop();

    ctx.log('cluster: two instances (PostgreSQL + Redis)');
    const env = { DATABASE_URL: dbUrl, REDIS_URL: redis.url };
    const [a, b] = await Promise.all([
      startParley({ logDir: ctx.logDir, name: 'cluster-a', env }),
      startParley({ logDir: ctx.logDir, name: 'cluster-b', env }),
    ]);
    servers.push(a, b);
    out.phases.cluster = await phase(ctx, { users, channelId, a, b, servers: [a, b], redis });
    out.bus = { a: await busMetrics(a), b: await busMetrics(b) };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
    if (!ctx.keep) await resetPgSchema(pgUrl, SCHEMA).catch(() => {});
  }
  const s = out.phases.single?.main, c = out.phases.cluster?.main;
  if (s && c) {
    out.crossMinusSingleP99Ms = round2(c.groups.rB.p99 - s.groups.all.p99);
    out.crossMinusSameP99Ms = round2(c.groups.rB.p99 - c.groups.rA.p99);
    out.crossMinusSingleP50Ms = round2(c.groups.rB.p50 - s.groups.all.p50);
    out.sameRate = s.target === c.target;
    out.goalMet = out.sameRate && c.groups.rB.lossPct < 0.1 && out.crossMinusSingleP99Ms <= GOAL_MS;
  }
  return out;
}

// One phase: connect the sender (on A) and the two receiver halves (rA on A,
// rB on b), warm up, then one step at TARGET (halved once if the client saturates).
async function phase(ctx, { users, channelId, a, b, servers, redis }) {
  const tokens = users.map(tokenFor);
  const half = Math.ceil((users.length - 1) / 2);
  const groups = { snd: new Group(1, 'csnd'), rA: new Group(1, 'crA'), rB: new Group(1, 'crB') };
  const all = Object.values(groups);
  try {
    const opts = (srv) => ({ base: `ws://127.0.0.1:${srv.port}`, framing: 'json', concurrency: 50 });
    const conn = await Promise.all([
      groups.snd.connect(tokens.slice(0, 1), opts(a)),
      groups.rA.connect(tokens.slice(1, 1 + half), opts(a)),
      groups.rB.connect(tokens.slice(1 + half), opts(b)),
    ]);
    const failed = conn.reduce((x, r) => x + r.failed, 0);
    if (failed) throw new Error(`connect: ${failed} of ${users.length} failed (${conn.flatMap((r) => r.errors).join('; ')})`);
    const counts = { snd: 1, rA: half, rB: users.length - 1 - half };
    await sleep(ctx.quick ? 300 : 1000);
    const res = { instances: servers.length, receivers: { A: counts.rA, B: counts.rB, bOn: b === a ? 'A' : 'B' } };
    const args = { ctx, groups, counts, channelId, servers, redis, members: users.length };
    res.warm = await step({ ...args, rate: users.length * 10, durationMs: ctx.quick ? 500 : 1500 });
    if (!res.warm.groups.rA.delivered) throw new Error('warm-up: no message.new arrived');
    const dur = ctx.quick ? 1500 : 5000;
    let x = await step({ ...args, rate: TARGET, durationMs: dur });
    if (x.noisy) {
      ctx.log(`  other load on the machine (${x.otherCores} cores): waiting for quiet, then repeating the step`);
      await waitQuiet({ maxMs: ctx.quick ? 3000 : 20_000 });
      x = { ...(await step({ ...args, rate: TARGET, durationMs: dur })), repeated: true };
    }
    if (x.clientBound) {
      ctx.log('  the load generator saturated: repeating at half the rate');
      res.saturatedAtTarget = x;
      x = { ...(await step({ ...args, rate: TARGET / 2, durationMs: dur })), scaledDown: true };
    }
    res.main = x;
    return res;
  } finally {
    await Promise.all(all.map((g) => g.kill()));
  }
}

// One measurement window: `rate` deliveries/s over `members` connections.
async function step({ ctx, groups, counts, channelId, servers, redis, members, rate, durationMs }) {
  const msgRate = rate / members; // one message makes `members` deliveries (the sender's echo included)
  const entries = Object.entries(groups);
  await Promise.all(entries.map(([, g]) => g.all('reset')));
  await Promise.all(servers.map((s) => s.stats({ reset: true })));
  const cpu0 = servers.map((s) => s.cpuSec());
  const redis0 = redis?.cpuSec() ?? 0;
  const db0 = postgresCpuSec();
  const m0 = machineCpu();
  const t0 = nowUs();
  const { sent } = await groups.snd.ws[0].call('send', { channelId, rate: msgRate, durationMs, tag: `c${Math.round(rate)}` });
  // Drain (bounded): until every receiver has everything, or nothing moved for 0.5 s.
  let last = -1, stable = 0;
  const expected = sent * (members - 1);
  const peek = async () => (await Promise.all([groups.rA, groups.rB].map((g) => g.all('snap', { reset: false })))).flat().reduce((n, s) => n + s.deliveries, 0);
  await waitFor(async () => {
    const d = await peek();
    stable = d === last ? stable + 1 : 0;
    last = d;
    return d >= expected || stable >= 5;
  }, { timeoutMs: 10_000, everyMs: 100, what: 'drain' }).catch(() => {});
  const wallS = (nowUs() - t0) / 1e6;
  const machine = machineCoresSince(m0);
  const srvStats = await Promise.all(servers.map((s) => s.stats()));
  const snaps = Object.fromEntries(await Promise.all(entries.map(async ([k, g]) => [k, await g.snap()])));
  const summarize = (hist, delivered, conns) => {
    const L = hist.summaryMs();
    const exp = sent * conns;
    return { conns, delivered, expected: exp, lossPct: exp ? round2((1 - Math.min(delivered, exp) / exp) * 100) : 0, p50: L.p50, p90: L.p90, p99: L.p99, max: L.max };
  };
  const g = {};
  for (const k of ['rA', 'rB']) g[k] = summarize(snaps[k].lat, snaps[k].deliveries, counts[k]);
  g.all = summarize(new Hist(snaps.rA.lat).merge(snaps.rB.lat), snaps.rA.deliveries + snaps.rB.deliveries, counts.rA + counts.rB);
  const srvCores = servers.map((s, i) => round2((s.cpuSec() - cpu0[i]) / wallS));
  const clientCpu = entries.flatMap(([k]) => snaps[k].clientCpuCores);
  const redisCores = round2(((redis?.cpuSec() ?? 0) - redis0) / wallS);
  const dbCores = round2((postgresCpuSec() - db0) / wallS);
  const x = {
    target: Math.round(rate), msgsPerSec: round2(msgRate), sent, acks: snaps.snd.acks, errors: entries.reduce((n, [k]) => n + snaps[k].errors, 0),
    errorSamples: entries.flatMap(([k]) => snaps[k].errorSamples).slice(0, 3), closed: snaps.rB.closed,
    groups: g,
    serverCpuCores: srvCores, serverEldP99Ms: srvStats.map((s) => s.eld.p99), serverRssMB: srvStats.map((s) => Math.round(s.rss / 2 ** 20)),
    redisCores, dbCores, clientCpu,
    machineBusyCores: round2(machine.busyCores), stealCores: round2(machine.stealCores),
  };
  x.otherCores = round2(machine.busyCores - srvCores.reduce((a, b) => a + b, 0) - clientCpu.reduce((a, b) => a + b, 0) - redisCores - dbCores);
  x.noisy = x.otherCores > 0.3 || x.stealCores > 0.2;
  x.clientBound = clientCpu.some((c) => c >= 0.9) || clientCpu.reduce((a, b) => a + b, 0) >= 1.0;
  ctx.log(`  ${servers.length === 1 ? 'single' : 'cluster'} ${x.target}/s: A-side p50 ${g.rA.p50} p99 ${g.rA.p99} ms, ` +
    `${servers.length === 1 ? 'other half (also A)' : 'B-side'} p50 ${g.rB.p50} p99 ${g.rB.p99} ms, loss ${g.rA.lossPct}/${g.rB.lossPct}%, ` +
    `srv ${srvCores.join('+')} cores, redis ${redisCores}, db ${dbCores}, client ${clientCpu.join('/')}, other ${x.otherCores}` +
    `${x.clientBound ? ' CLIENT-BOUND' : ''}${x.noisy ? ' NOISY' : ''}`);
  return x;
}

// CPU of every PostgreSQL process on the machine (the server may be shared
// with other work: its CPU is reported, not charged to "other load").
function postgresCpuSec() {
  let s = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try { if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) s += procCpuSec(pid); } catch { /* gone */ }
  }
  return s;
}

// The bus's counters from /metrics (whatever their exact names: lines mentioning "bus").
async function busMetrics(srv) {
  try {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    return text.split('\n').filter((l) => l && !l.startsWith('#') && /bus/i.test(l)).slice(0, 40);
  } catch (e) { return [`unavailable: ${e.message}`]; }
}

const round2 = (v) => Math.round(v * 100) / 100;

export function report(r, { table }) {
  if (r.skipped) return { text: table(`Cluster (skipped: ${r.skipped})`, []), ratios: {} };
  const rows = [];
  const add = (label, x, k, srvIdx) => {
    if (!x) return;
    const v = x.groups[k];
    rows.push({
      receivers: label, 'deliv/s': x.target, conns: v.conns, delivered: v.delivered, 'loss %': v.lossPct,
      'p50 ms': v.p50, 'p99 ms': v.p99, 'max ms': v.max,
      'srv cores': srvIdx == null ? x.serverCpuCores.join('+') : x.serverCpuCores[srvIdx], 'srv EL p99 ms': x.serverEldP99Ms.join('/'),
      'redis cores': x.redisCores, 'db cores': x.dbCores, 'client cores': x.clientCpu.join('+'), 'other cores': x.otherCores,
      note: [x.scaledDown && 'scaled down (client-bound)', x.clientBound && 'client-bound', x.noisy && 'other load', x.repeated && 'repeated'].filter(Boolean).join(', '),
    });
  };
  const s = r.phases.single?.main, c = r.phases.cluster?.main;
  add('single instance: all on A', s, 'all');
  add('cluster: on A (same instance)', c, 'rA', 0);
  add('cluster: on B (cross-instance)', c, 'rB', 1);
  let text = table(`Cluster: ${r.members} members, one sender on A, ${r.messageBytes}-byte messages, PostgreSQL (latency ms)`, rows);
  if (r.crossMinusSingleP99Ms != null) {
    text += `  cross-instance p99 minus single-instance p99: ${r.crossMinusSingleP99Ms >= 0 ? '+' : ''}${r.crossMinusSingleP99Ms} ms (goal <= +${r.goalMs} ms); ` +
      `B minus A in the cluster: ${r.crossMinusSameP99Ms >= 0 ? '+' : ''}${r.crossMinusSameP99Ms} ms\n`;
  }
  if (c && !c.groups.rB.delivered) text += '  no message reached the receivers on B: this build does not deliver across instances (no Redis bus?)\n';
  const ratios = {};
  if (s?.groups.all.p99 && c?.groups.rB.delivered) ratios['Cluster cross-instance/single-instance p99'] = Math.round((c.groups.rB.p99 / s.groups.all.p99) * 100) / 100;
  return { text, ratios };
}
