#!/usr/bin/env node
// Parley benchmark harness. Usage: node bench/run.mjs [--quick] [--repeats N] [--only fanout,ingest,connections,history,inbound,cluster,search,window]
//                                                     [--servers parley,ws,sio] [--rates 50000,100000] [--keep]
// See bench/README.md. Results: bench/results/<scenario>.json and bench/results/summary.json.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR } from './lib/servers.mjs';
import { ensureBuilt, seedParley, makeUsers } from './lib/parley.mjs';
import { LABEL } from './lib/targets.mjs';
import { machineInfo, table, ratio, waitQuiet } from './lib/util.mjs';
import { describeCosts, machineCosts } from './lib/machine-costs.mjs';
import * as fanoutS from './scenarios/fanout.mjs';
import * as ingestS from './scenarios/ingest.mjs';
import * as connectionsS from './scenarios/connections.mjs';
import * as historyS from './scenarios/history.mjs';
import * as inboundS from './scenarios/inbound.mjs';
import * as clusterS from './scenarios/cluster.mjs';
import * as searchS from './scenarios/search.mjs';
import * as windowS from './scenarios/window.mjs';
import * as scaleS from './scenarios/scale.mjs';

const SCENARIOS = { fanout: fanoutS, window: windowS, ingest: ingestS, connections: connectionsS, history: historyS, inbound: inboundS, cluster: clusterS, search: searchS, scale: scaleS };
// Run only when named in --only: `scale` takes about 2.5 minutes (two full fan-out ladders).
const OPT_IN = new Set(['scale']);

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : (argv.find((a) => a.startsWith(`--${name}=`)) || '').split('=')[1]; };
if (flag('help') || flag('h')) {
  console.log('node bench/run.mjs [--quick] [--repeats N] [--only fanout,ingest,connections,history,inbound,cluster,search,window,scale] [--servers parley,ws,sio] [--keep]');
  console.log('scale runs only when named in --only.');
  console.log('cluster, scale, ingest (second row): PostgreSQL from BENCH_PG_URL (else DATABASE_URL if postgres://, else postgres://postgres@127.0.0.1:5432/test),');
  console.log('  schemas bench_cluster, bench_scale, bench_ingest; cluster and scale: their own redis-server (or BENCH_REDIS_URL)');
  process.exit(0);
}

// 19,000 connections need ~19,100 descriptors in the server process. If the
// soft limit is lower than the hard one, re-run ourselves under a shell that
// raises it, so every server and load generator inherits the raised limit.
const limits = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' }).stdout.trim().split('\n');
const [soft, hard] = limits.map((x) => (x === 'unlimited' ? Infinity : Number(x)));
if (soft < Math.min(hard, 20_000) && !process.env.BENCH_ULIMIT_RAISED) {
  const want = Math.min(hard, 20_000);
  const r = spawnSync('sh', ['-c', `ulimit -n ${want} && exec "$0" "$@"`, process.execPath, ...process.execArgv, process.argv[1], ...argv], { stdio: 'inherit', env: { ...process.env, BENCH_ULIMIT_RAISED: '1' } });
  process.exit(r.status ?? 1);
}

const quick = flag('quick');
// Fan-out rungs and window runs are repeated (median and spread): 3 by default, 1 with --quick.
const repeats = Math.max(1, Math.min(9, Number(opt('repeats')) || (quick ? 1 : 3)));
// --rates 50000,100000: only these rungs of the fan-out ladder (a focused measurement; the goals
// need the whole ladder, so a run with --rates says so in its notes).
const rates = opt('rates') ? opt('rates').split(',').map(Number).filter((x) => x > 0) : null;
const only = (opt('only') || Object.keys(SCENARIOS).filter((k) => !OPT_IN.has(k)).join(',')).split(',').filter(Boolean);
for (const s of only) if (!SCENARIOS[s]) { console.error(`unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(', ')}`); process.exit(2); }
let kinds = (opt('servers') || 'parley,ws,sio').split(',').filter(Boolean);

const started = Date.now();
const log = (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${m}`);
const resultsDir = join(BENCH_DIR, 'results');
const logDir = join(resultsDir, 'logs');
rmSync(logDir, { recursive: true, force: true });
mkdirSync(logDir, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'parley-bench-'));

const ctx = {
  quick, repeats, rates, log, logDir, kinds, fdLimit: Math.min(soft, hard), keep: flag('keep'),
  dbFile: join(work, 'bench.sqlite'),
  users: {
    fan: makeUsers('fan', 1000), // fan-out channel members
    dm: makeUsers('dm', 400), // 200 DM pairs
    idle: makeUsers('idle', 1000), // idle connections (no shared channels: no presence fan-out)
    hist: makeUsers('hist', 1), // owner of the history channel
    inb: makeUsers('inb', 1), // alone in a channel: inbound cost
    win: makeUsers('win', 500), // window scenario channel members
  },
  notes: [],
};

if (rates) ctx.notes.push(`Fan-out ladder limited to ${rates.join(', ')} deliveries/s (--rates): its maximum is that of these rungs only.`);
const summary = { startedAt: new Date().toISOString(), machine: { ...machineInfo(), fdLimit: ctx.fdLimit }, quick, repeats, scenarios: {}, ratios: {}, notes: ctx.notes };
try {
  log(`machine: ${JSON.stringify(summary.machine)}`);
  summary.machine.costs = await machineCosts(work);
  log(describeCosts(summary.machine.costs));
  if (kinds.includes('parley')) {
    if (!ensureBuilt(log)) {
      ctx.notes.push('Parley not benchmarked: no runnable build (dist/main.js) and `npm run build` failed or src/main.ts is missing.');
      kinds = ctx.kinds = kinds.filter((k) => k !== 'parley');
    } else {
      log('seeding Parley database');
      await seedParley({ dbFile: ctx.dbFile, logDir, users: Object.values(ctx.users).flat() });
    }
  }
  ctx.parley = kinds.includes('parley');
  for (const name of only) {
    // The machine may be shared (builds, test runs): wait a little for it to
    // go quiet while nothing of ours runs, and say so when it did not.
    const otherLoad = await waitQuiet({ maxMs: quick ? 3000 : 30_000 });
    log(`== ${name} == (other load before start: ${otherLoad} cores)`);
    if (otherLoad > 0.3) ctx.notes.push(`${name}: the machine was busy with other work before the scenario (${otherLoad} of 2 cores); figures may be low.`);
    const t0 = Date.now();
    let r;
    try { r = await SCENARIOS[name].run(ctx); }
    catch (e) { r = { error: String(e.stack || e) }; log(`${name} failed: ${e.stack || e}`); }
    r.seconds = Math.round((Date.now() - t0) / 100) / 10;
    r.otherLoadBeforeCores = otherLoad;
    summary.scenarios[name] = r;
    writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify({ machine: summary.machine, quick, at: new Date().toISOString(), ...r }, null, 2));
    if (!r.error) {
      const rep = SCENARIOS[name].report(r, { table, ratio, LABEL });
      console.log(rep.text);
      Object.assign(summary.ratios, rep.ratios);
    }
  }
  summary.goals = goals(summary.scenarios);
  console.log(table('Ratios (same run)', Object.entries(summary.ratios).map(([k, v]) => ({ ratio: k, value: v }))));
  console.log(table('Goals', summary.goals));
  for (const n of ctx.notes) console.log(`note: ${n}`);
} finally {
  summary.seconds = Math.round((Date.now() - started) / 1000);
  writeFileSync(join(resultsDir, 'summary.json'), JSON.stringify(summary, null, 2));
  if (!flag('keep')) rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
  log(`done in ${summary.seconds}s; results in ${resultsDir}, server logs in ${logDir}`);
}
// Load generators and servers are killed by the exit handler. A scenario that
// could not run makes the exit status 1.
process.exit(Object.values(summary.scenarios).some((r) => r.error || Object.values(r.servers || {}).some((v) => v?.error)) ? 1 : 0);

// Where each goal of the issue stands, from this run's figures only.
function goals(s) {
  const g = [];
  const add = (goal, value, ok, caveat) => g.push({ goal, measured: value ?? 'not measured', status: value == null ? 'n/a' : (ok ? 'met' : 'NOT met') + (caveat ? ` (${caveat})` : '') });
  const f = s.fanout?.servers;
  const pr = f?.parley?.maxRate, wr = f?.ws?.maxRate, sr = f?.sio?.maxRate;
  // A max rate that is only a lower bound (client-bound, other load) makes the comparison uncertain.
  const bound = (...ks) => ks.filter((k) => f?.[k]?.limitedBy && f[k].limitedBy !== 'server').map((k) => `${LABEL[k]} ${f[k].limitedBy}-limited`).join(', ');
  add('Fan-out Parley >= 0.9x ws-ref', pr && wr ? `${ratio(pr, wr)}x` : null, pr / wr >= 0.9, bound('parley', 'ws'));
  add('Fan-out Parley >= 1.2x socket.io-ref', pr && sr ? `${ratio(pr, sr)}x` : null, pr / sr >= 1.2, bound('parley', 'sio'));
  const ing = s.ingest?.servers?.parley?.msgsPerSec, ingWs = s.ingest?.servers?.ws?.msgsPerSec;
  // Beside it, what the ws reference (which keeps nothing) reached under the same load: the machine's ceiling.
  add('Ingest >= 40,000 msgs/s (SQLite)', ing != null ? `${ing} msgs/s${ingWs ? ` (ws-ref, keeping nothing: ${ingWs})` : ''}` : null, ing >= 40_000);
  const at = f?.parley?.fixed?.find((x) => x.target === 100_000);
  add('p50 <= 5 ms at 100k deliv/s', at ? `${at.p50} ms` : null, at?.p50 <= 5);
  add('p99 <= 50 ms at 100k deliv/s', at ? `${at.p99} ms` : null, at?.p99 <= 50);
  // Speed round two: latency at ordinary load and cost per delivery against the ws reference of this run.
  const fx = (k, rate) => f?.[k]?.fixed?.find((x) => x.target === rate);
  for (const rate of [50_000, 100_000]) {
    const p = fx('parley', rate), w = fx('ws', rate);
    for (const q of ['p50', 'p99']) {
      add(`${q} at ${rate / 1000}k deliv/s <= 1.2x ws-ref`, p?.[q] != null && w?.[q] ? `${ratio(p[q], w[q])}x (${p[q]} vs ${w[q]} ms)` : null, p?.[q] / w?.[q] <= 1.2);
    }
  }
  const pc = fx('parley', 100_000)?.serverCpuUsPerDelivery, wc = fx('ws', 100_000)?.serverCpuUsPerDelivery;
  add('CPU per delivery at 100k <= ws-ref', pc && wc ? `${ratio(pc, wc)}x (${pc} vs ${wc} us)` : null, pc / wc <= 1);
  // Inbound: the median of the rounds' ratios (servers alternating in one run; scenarios/inbound.mjs).
  const ib = s.inbound?.servers, ip = ib?.parley?.valid?.serverCpuUsPerMsg, iw = ib?.ws?.valid?.serverCpuUsPerMsg, ir = s.inbound?.ratios?.ws;
  add('Inbound CPU per accepted send <= 3x ws-ref', ir ? `${ir.median}x (rounds ${ir.min}-${ir.max}; ${ip} vs ${iw} us)` : null, ir?.median <= 3);
  const w = s.window?.servers;
  const wp = w?.parley?.msgsPerSec, ww = w?.ws?.msgsPerSec;
  add('Window: Parley >= 0.9x ws-ref throughput', wp && ww ? `${ratio(wp, ww)}x (${wp} vs ${ww} msgs/s)` : null, wp / ww >= 0.9,
    ['parley', 'ws'].filter((k) => w?.[k]?.clientBound || w?.[k]?.noisy).map((k) => `${LABEL[k]} ${w[k].clientBound ? 'client-bound' : 'other load'}`).join(', '));
  const c = s.connections?.servers;
  const big = (v) => v?.levels?.at(-1);
  const ph = big(c?.parley)?.heapPerConn, wh = big(c?.ws)?.heapPerConn;
  add(`Heap/conn <= 1.5x ws-ref at ${big(c?.parley)?.connections ?? '19k'}`, ph && wh ? `${ratio(ph, wh)}x (${ph} vs ${wh} B)` : null, ph / wh <= 1.5);
  const h = s.history;
  const hp = h?.servers?.parley?.reqPerSec, hb = h?.servers?.bare?.reqPerSec;
  // Only a comparison when both answered the same JSON (the bare handler does all of Parley's work).
  add('History >= 0.7x bare handler', hp && hb ? `${ratio(hp, hb)}x${h.sameJson ? '' : ' (pages differ)'}` : null, hp / hb >= 0.7 && h.sameJson === true);
  const cl = s.cluster?.rounds ? s.cluster : null;
  const cross = cl?.crossDelivered ? cl.crossMinusSingleP99Ms : null;
  add(`Cluster: cross-instance p99 <= single + ${cl?.goalMs ?? 5} ms at ${(cl?.rate ?? 50_000) / 1000}k deliv/s`,
    cross != null ? `${cross >= 0 ? '+' : ''}${cross} ms (${cl.clusterB.p99} vs ${cl.single.p99} ms)` : (cl ? 'no cross-instance delivery' : null),
    cl?.goalMet, [cl?.scaledDown && 'scaled down: client-bound', cl?.noisy && 'other load'].filter(Boolean).join(', '));
  return g;
}
