// Scenario 6: cluster. What cross-instance delivery costs. A channel of 1,000
// members on PostgreSQL; one member sends 100-byte messages open-loop at 50
// msg/s (50,000 deliveries/s). Two set-ups run side by side on one schema:
//   single:  one instance (S), no Redis, its own channel and 1,000 users: the
//            sender and all 999 receivers on S (the one-instance deployment a
//            cluster replaces);
//   cluster: instances A and B on a Redis of the harness's own, another
//            channel and 1,000 other users: the sender on A, the receivers
//            split evenly, half on A (same instance), half on B (cross-instance).
// All connections stay open for the whole scenario; the measurement steps
// alternate (single, cluster, cluster, single, ...), so both set-ups see the
// same machine, and a round (one step of each) gives a paired comparison.
// Latency is the fan-out scenario's: from the message's intended send time to
// the receipt of its message.new. The receivers are split over two load-
// generator processes (A's half and B's half), so each side has its own
// histogram. The figure that matters: B's p99 minus the single instance's p99
// (goal: at most +5 ms); B minus A within the cluster compares the same messages.
import { Group } from '../lib/workers.mjs';
import { startParley, createChannel, tokenFor, makeUsers, resetPgSchema, seedPgUsers, redact, clusterInfra } from '../lib/parley.mjs';
import { Hist, sleep, nowUs, waitFor, machineCpu, machineCoresSince, waitQuiet, postgresCpu, postgresCpuSince } from '../lib/util.mjs';

const TARGET = 50_000; // deliveries/s
const GOAL_MS = 5; // cross-instance p99 minus single-instance p99
const SCHEMA = 'bench_cluster';

export async function run(ctx) {
  if (!ctx.parley) return { skipped: 'Parley not available' };
  const infra = await clusterInfra(ctx, { schema: SCHEMA, redisName: 'cluster-redis' });
  if (infra.skipped) return { skipped: infra.skipped };
  const { pgUrl, dbUrl, redis } = infra;
  const usersS = ctx.users.fan; // the single instance's channel
  const usersC = makeUsers('clu', usersS.length); // the cluster's channel
  const n = usersS.length;
  const half = Math.ceil((n - 1) / 2);
  const out = {
    members: n, messageBytes: 100, targetDeliveriesPerSec: TARGET, goalMs: GOAL_MS,
    database: redact(dbUrl), redis: process.env.BENCH_REDIS_URL ? 'BENCH_REDIS_URL' : 'own redis-server',
    receivers: { single: n - 1, clusterA: half, clusterB: n - 1 - half },
  };
  const servers = [];
  const groups = { snd: new Group(1, 'csnd'), r1: new Group(1, 'cr1'), r2: new Group(1, 'cr2') };
  try {
    // Schema and users through the single instance (it runs the migrations), then the cluster.
    await resetPgSchema(pgUrl, SCHEMA);
    const S = await startParley({ logDir: ctx.logDir, name: 'cluster-single', env: { DATABASE_URL: dbUrl, REDIS_URL: '' } });
    servers.push(S);
    await seedPgUsers(pgUrl, SCHEMA, [...usersS, ...usersC]);
    const env = { DATABASE_URL: dbUrl, REDIS_URL: redis.url };
    const [A, B] = await Promise.all([
      startParley({ logDir: ctx.logDir, name: 'cluster-a', env }),
      startParley({ logDir: ctx.logDir, name: 'cluster-b', env }),
    ]);
    servers.push(A, B);
    const [chS, chC] = await Promise.all([createChannel(S, 'bench-cluster-single', usersS), createChannel(A, 'bench-cluster', usersC)]);
    ctx.log(`cluster: schema ${SCHEMA}, single instance S (no Redis) and instances A, B (Redis), a channel of ${n} members each`);

    // Connections: snd holds S's sender (index 0), then A's (index 1); r1 holds half of S's
    // receivers and A's half of the cluster's; r2 the other half of S's and B's half.
    const tS = usersS.map(tokenFor), tC = usersC.map(tokenFor);
    const base = (srv) => ({ base: `ws://127.0.0.1:${srv.port}`, framing: 'json', concurrency: 50 });
    const conns = [];
    conns.push(await groups.snd.connect(tS.slice(0, 1), base(S)), await groups.snd.connect(tC.slice(0, 1), base(A)));
    conns.push(...await Promise.all([groups.r1.connect(tS.slice(1, 1 + half), base(S)), groups.r2.connect(tS.slice(1 + half), base(S))]));
    conns.push(...await Promise.all([groups.r1.connect(tC.slice(1, 1 + half), base(A)), groups.r2.connect(tC.slice(1 + half), base(B))]));
    const failed = conns.reduce((x, r) => x + r.failed, 0);
    if (failed) throw new Error(`connect: ${failed} of ${2 * n} failed (${conns.flatMap((r) => r.errors).join('; ')})`);
    await sleep(ctx.quick ? 300 : 1000);

    const setups = {
      single: { name: 'single', servers: [S], connIndex: 0, channelId: chS, counts: { r1: half, r2: n - 1 - half } },
      cluster: { name: 'cluster', servers: [A, B], connIndex: 1, channelId: chC, counts: { r1: half, r2: n - 1 - half } },
    };
    const args = { ctx, groups, redis, members: n };
    out.warm = {};
    for (const s of Object.values(setups)) {
      out.warm[s.name] = await step({ ...args, setup: s, rate: n * 10, durationMs: ctx.quick ? 500 : 1500 });
      if (!out.warm[s.name].groups.r1.delivered) throw new Error(`warm-up (${s.name}): no message.new arrived`);
    }

    // Rounds: one step of each set-up, in alternating order. A round is clean when neither
    // step saw other load; keep going (bounded) until enough clean rounds are in.
    const want = ctx.quick ? 1 : 3, maxRounds = ctx.quick ? 2 : 6;
    const dur = ctx.quick ? 1500 : 4000;
    let rate = TARGET;
    out.rounds = [];
    for (let i = 0; i < maxRounds && out.rounds.filter((r) => r.clean).length < want; i++) {
      const order = i % 2 ? ['cluster', 'single'] : ['single', 'cluster'];
      const round = { rate };
      for (const k of order) round[k] = await step({ ...args, setup: setups[k], rate, durationMs: dur });
      round.clean = !round.single.noisy && !round.cluster.noisy;
      round.crossMinusSingleP99Ms = round2(round.cluster.groups.r2.p99 - round.single.groups.all.p99);
      out.rounds.push(round);
      if (round.single.clientBound || round.cluster.clientBound) {
        ctx.log('  the load generator saturated: halving the rate for the next rounds');
        rate = Math.round(rate / 2);
        out.scaledDown = true;
      }
      if (!round.clean && i + 1 < maxRounds) await waitQuiet({ maxMs: ctx.quick ? 3000 : 15_000 });
    }
    out.bus = { a: await busMetrics(A), b: await busMetrics(B) };
  } finally {
    await Promise.all(Object.values(groups).map((g) => g.kill()));
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
    if (!ctx.keep) await resetPgSchema(pgUrl, SCHEMA).catch(() => {});
  }
  summarize(out);
  return out;
}

// Headline figures, from the clean rounds at the final rate (all rounds at that rate when none
// was clean): per side, the median over rounds of each step's p50 and p99 (one disturbed step
// moves a median less than a merged histogram), and the median of the rounds' paired differences.
// The merged histograms are kept too (mergedP50, mergedP99).
function summarize(out) {
  const rate = out.rounds.at(-1).rate;
  const atRate = out.rounds.filter((r) => r.rate === rate);
  const clean = atRate.filter((r) => r.clean);
  const use = clean.length ? clean : atRate;
  const med = (xs) => {
    const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
    return s.length ? round2(s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : null;
  };
  const sideOf = (k, g) => {
    const steps = use.map((r) => r[k].groups[g]);
    const merged = steps.reduce((h, x) => h.merge(x.hist), new Hist()).summaryMs();
    return {
      p50: med(steps.map((x) => x.p50)), p99: med(steps.map((x) => x.p99)), max: Math.max(...steps.map((x) => x.max)),
      lossPct: Math.max(...steps.map((x) => x.lossPct)), delivered: steps.reduce((a, x) => a + x.delivered, 0),
      p99PerRound: steps.map((x) => x.p99), mergedP50: merged.p50, mergedP99: merged.p99,
    };
  };
  out.rate = rate;
  out.roundsUsed = use.length;
  out.cleanRounds = clean.length;
  out.noisy = !clean.length;
  out.single = sideOf('single', 'all');
  out.clusterA = sideOf('cluster', 'r1');
  out.clusterB = sideOf('cluster', 'r2');
  out.crossDelivered = out.clusterB.delivered > 0;
  out.crossMinusSingleP99Ms = round2(med(use.map((r) => r.cluster.groups.r2.p99 - r.single.groups.all.p99)));
  out.crossMinusSameP99Ms = round2(med(use.map((r) => r.cluster.groups.r2.p99 - r.cluster.groups.r1.p99)));
  out.crossMinusSingleP50Ms = round2(med(use.map((r) => r.cluster.groups.r2.p50 - r.single.groups.all.p50)));
  out.crossMinusSingleMergedP99Ms = round2(out.clusterB.mergedP99 - out.single.mergedP99);
  out.goalMet = out.crossDelivered && out.clusterB.lossPct < 0.1 && out.crossMinusSingleP99Ms <= out.goalMs;
  // The histograms are bulky: keep them out of the JSON.
  for (const r of [...out.rounds, ...Object.values(out.warm).map((w) => ({ w }))]) {
    for (const x of [r.single, r.cluster, r.w]) if (x) for (const g of Object.values(x.groups)) delete g.hist;
  }
}

// One measurement window of one set-up: `rate` deliveries/s over `members` connections.
async function step({ ctx, groups, redis, members, setup, rate, durationMs }) {
  const { servers, counts } = setup;
  const msgRate = rate / members; // one message makes `members` deliveries (the sender's echo included)
  const entries = Object.entries(groups);
  await Promise.all(entries.map(([, g]) => g.all('reset')));
  await Promise.all(servers.map((s) => s.stats({ reset: true })));
  const cpu0 = servers.map((s) => s.cpuSec());
  const redis0 = redis?.cpuSec() ?? 0;
  const db0 = postgresCpu();
  const m0 = machineCpu();
  const t0 = nowUs();
  const { sent } = await groups.snd.ws[0].call('send', { channelId: setup.channelId, connIndex: setup.connIndex, rate: msgRate, durationMs, tag: `${setup.name}${Math.round(rate)}` });
  // Drain (bounded): until every receiver has everything, or nothing moved for 0.5 s.
  let last = -1, stable = 0;
  const expected = sent * (members - 1);
  const peek = async () => (await Promise.all([groups.r1, groups.r2].map((g) => g.all('snap', { reset: false })))).flat().reduce((a, s) => a + s.deliveries, 0);
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
  const side = (hist, delivered, conns) => {
    const L = hist.summaryMs();
    const exp = sent * conns;
    return { conns, delivered, lossPct: exp ? round2((1 - Math.min(delivered, exp) / exp) * 100) : 0, p50: L.p50, p90: L.p90, p99: L.p99, max: L.max, hist };
  };
  const g = {
    r1: side(snaps.r1.lat, snaps.r1.deliveries, counts.r1),
    r2: side(snaps.r2.lat, snaps.r2.deliveries, counts.r2),
    all: side(new Hist(snaps.r1.lat).merge(snaps.r2.lat), snaps.r1.deliveries + snaps.r2.deliveries, counts.r1 + counts.r2),
  };
  const srvCores = servers.map((s, i) => round2((s.cpuSec() - cpu0[i]) / wallS));
  const clientCpu = entries.flatMap(([k]) => snaps[k].clientCpuCores);
  const redisCores = servers.length > 1 ? round2(((redis?.cpuSec() ?? 0) - redis0) / wallS) : 0;
  const dbCores = round2(postgresCpuSince(db0) / wallS);
  const x = {
    target: Math.round(rate), msgsPerSec: round2(msgRate), sent, acks: snaps.snd.acks,
    errors: entries.reduce((a, [k]) => a + snaps[k].errors, 0), errorSamples: entries.flatMap(([k]) => snaps[k].errorSamples).slice(0, 3),
    closed: Object.fromEntries([...new Set([...Object.keys(snaps.r1.closed), ...Object.keys(snaps.r2.closed)])].map((c) => [c, (snaps.r1.closed[c] || 0) + (snaps.r2.closed[c] || 0)])), groups: g,
    serverCpuCores: srvCores, serverEldP99Ms: srvStats.map((s) => s.eld.p99), serverRssMB: srvStats.map((s) => Math.round(s.rss / 2 ** 20)),
    redisCores, dbCores, clientCpu, machineBusyCores: round2(machine.busyCores), stealCores: round2(machine.stealCores),
  };
  x.otherCores = round2(machine.busyCores - srvCores.reduce((a, b) => a + b, 0) - clientCpu.reduce((a, b) => a + b, 0) - redisCores - dbCores);
  x.noisy = x.otherCores > 0.3 || x.stealCores > 0.2;
  x.clientBound = clientCpu.some((c) => c >= 0.9) || clientCpu.reduce((a, b) => a + b, 0) >= 1.0;
  const two = servers.length > 1;
  ctx.log(`  ${setup.name} ${x.target}/s: ${two ? 'on A' : 'half 1'} p50 ${g.r1.p50} p99 ${g.r1.p99} ms, ${two ? 'on B' : 'half 2'} p50 ${g.r2.p50} p99 ${g.r2.p99} ms, ` +
    `loss ${g.r1.lossPct}/${g.r2.lossPct}%, srv ${srvCores.join('+')} cores, redis ${redisCores}, db ${dbCores}, client ${clientCpu.join('/')}, other ${x.otherCores}` +
    `${x.clientBound ? ' CLIENT-BOUND' : ''}${x.noisy ? ' NOISY' : ''}`);
  return x;
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
  const last = (k) => r.rounds.filter((x) => x.rate === r.rate).at(-1)?.[k];
  const rows = [];
  const add = (label, conns, v, x, srv) => rows.push({
    receivers: label, 'deliv/s': r.rate, conns,
    'loss %': v.lossPct, 'p50 ms': v.p50, 'p99 ms': v.p99, 'p99 per round': v.p99PerRound.join(' / '), 'max ms': v.max,
    'srv cores': srv, 'srv EL p99 ms': x?.serverEldP99Ms.join('/'), 'redis cores': x?.redisCores, 'db cores': x?.dbCores,
    'client cores': x?.clientCpu.join('+'),
  });
  add('single instance: all on S', r.receivers.single, r.single, last('single'), last('single')?.serverCpuCores[0]);
  add('cluster: on A (same instance)', r.receivers.clusterA, r.clusterA, last('cluster'), last('cluster')?.serverCpuCores[0]);
  add('cluster: on B (cross-instance)', r.receivers.clusterB, r.clusterB, last('cluster'), last('cluster')?.serverCpuCores[1]);
  const sign = (v) => `${v >= 0 ? '+' : ''}${v}`;
  let text = table(`Cluster: ${r.members} members per channel, one sender (on S, or on A), ${r.messageBytes}-byte messages, PostgreSQL ` +
    `(latency ms, median of ${r.roundsUsed} ${r.noisy ? 'round(s), none clean: other load' : 'clean round(s)'}${r.scaledDown ? ', scaled down: client-bound' : ''})`, rows);
  if (r.crossDelivered) {
    text += `  cross-instance p99 minus single-instance p99 (median of the rounds' differences): ${sign(r.crossMinusSingleP99Ms)} ms (goal <= +${r.goalMs} ms; ` +
      `merged histograms ${sign(r.crossMinusSingleMergedP99Ms)} ms); B minus A in the cluster: ${sign(r.crossMinusSameP99Ms)} ms; p50 B minus single: ${sign(r.crossMinusSingleP50Ms)} ms\n`;
  } else text += '  no message reached the receivers on B: this build does not deliver across instances (no Redis bus?)\n';
  const ratios = {};
  if (r.single.p99 && r.crossDelivered) ratios['Cluster cross-instance/single-instance p99'] = Math.round((r.clusterB.p99 / r.single.p99) * 100) / 100;
  return { text, ratios };
}
