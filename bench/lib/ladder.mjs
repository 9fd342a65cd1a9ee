// The open-loop fan-out ladder, shared by the fanout and scale scenarios: a
// fixed ladder of delivery rates (LADDER), each rung run `--repeats` times; per
// rung the median p50/p99 and their spread. A rung passes when its median p99
// <= 50 ms with no lost deliveries; the maximum is the highest passing rung
// (every rung is measured, failed ones too, since failures are not monotonic).
// The measurement works on any number of server processes (the scale scenario
// runs two instances): their CPU is summed, and kept per instance too.
import { nowUs, machineCpu, machineCoresSince, waitQuiet, median, round2 } from './util.mjs';
import { drainDeliveries } from './channel.mjs';
import { stageBuckets, stagesBetween } from './parley.mjs';

export const P99_GOAL_MS = 50;
// Delivery rates measured (deliveries/s), up to what one 2-core machine's client can take.
export const LADDER = [25_000, 50_000, 100_000, 200_000, 400_000, 800_000];
const STEP_MS = 2000; // per repeat (--quick: 1000)

export const pass = (x) => x.p99 <= P99_GOAL_MS && x.lossPct < 0.1;
const mergeCounts = (a, b) => { const o = { ...a }; for (const [k, v] of Object.entries(b)) o[k] = (o[k] || 0) + v; return o; };

// The median of a rung's repeats: p50, p99, loss and the server figures are
// medians, with the min-max spread of p50 and p99. Client cores and the rest
// come from the repeat whose p99 is the median one. A rung passes on its
// median p99 and median loss.
export function medianStep(runs) {
  const byP99 = [...runs].sort((a, b) => a.p99 - b.p99);
  const rep = byP99[(byP99.length - 1) >> 1];
  const m = { ...rep, repeats: runs.length };
  for (const k of ['p50', 'p99', 'max', 'lossPct', 'achieved', 'serverCpuCores', 'serverCpuUsPerDelivery', 'serverEldP99Ms', 'otherCores']) m[k] = median(runs.map((x) => x[k]));
  for (const k of ['ackP50', 'ackP99', 'walkP50', 'walkP99']) {
    const v = runs.map((x) => x[k]).filter(Number.isFinite);
    if (v.length) m[k] = median(v);
  }
  const span = (k) => runs.map((x) => x[k]).filter(Number.isFinite);
  m.p50Min = Math.min(...span('p50')); m.p50Max = Math.max(...span('p50'));
  m.p99Min = Math.min(...span('p99')); m.p99Max = Math.max(...span('p99'));
  m.pass = pass(m);
  m.passes = runs.filter(pass).length;
  // Client-bound / disturbed when most repeats were.
  m.clientBound = runs.filter((x) => x.clientBound).length * 2 > runs.length;
  m.noisy = runs.filter((x) => x.noisy).length * 2 > runs.length;
  m.runs = runs;
  return m;
}

// Warm-up, then the ladder, on an open channel (lib/channel.mjs): `servers` are the
// server processes serving it, `extraCpu` other processes whose CPU is reported (and not
// counted as other load): { name: start }, where start() returns a function giving the CPU
// seconds used since that start (e.g. { redis, db }).
// Resolves with { degree, ladder, fixed, maxRate, limitedBy, maxRateNote, repeats, stepMs }.
export async function runLadder({ ctx, label, servers, ch, members, extraCpu = {}, ladder = ctx.rates ?? LADDER }) {
  return (await runLadders(ctx, [{ label, servers, ch, members, extraCpu }], ladder))[0];
}

// Several set-ups on one ladder, interleaved: each repeat of a rung runs every set-up once,
// in alternating order (A B, then B A, ...), so that load from elsewhere on the machine falls on
// all of them alike and their maxima compare. One set-up is runLadder.
export async function runLadders(ctx, setups, ladder = ctx.rates ?? LADDER) {
  const sus = setups.map((su) => ({ extraCpu: {}, ...su, degree: su.members, res: { ladder: [], fixed: [] } }));
  // A step that fails while something else loaded the machine is run once more.
  const step = async (su, rate, durationMs) => {
    const args = { ctx, label: su.label, servers: su.servers, sender: su.ch.sender, all: su.ch.all, channelId: su.ch.channelId, extraCpu: su.extraCpu, rate, durationMs, degree: su.degree };
    const x = await runStep(args);
    if (pass(x) || !x.noisy) return x;
    ctx.log(`  other load on the machine (${x.otherCores} cores): waiting for quiet, then repeating the step`);
    await waitQuiet({ maxMs: ctx.quick ? 3000 : 20_000 });
    return { ...(await runStep(args)), repeated: true };
  };

  // Warm-up at a low rate; it also measures how many message.new frames one
  // message produces (Parley may or may not echo to the sender's connection).
  // A step passes on the server's merit: p99 within the goal and nothing lost.
  // A busy client only inflates latency, so a pass with a busy client stands;
  // a failure with a client-bound step is the client's limit, and is noted.
  for (const su of sus) {
    const warm = await step(su, 5 * su.members, ctx.quick ? 500 : 1500);
    su.degree = su.res.degree = warm.sent ? Math.round(warm.delivered / warm.sent) : 0;
    if (!su.degree) throw new Error(`warm-up${sus.length > 1 ? ` (${su.label})` : ''}: no message.new arrived`);
  }

  // Fixed ladder of delivery rates, every rung run `repeats` times (median and
  // spread). Failures are not monotonic (group commit batches more at higher
  // rates), so a failed rung does not end the ladder: only a rung the client
  // itself cannot generate does (it failed while client-bound), since every
  // higher rung would be the client's limit too.
  const stepMs = ctx.quick ? 1000 : STEP_MS;
  const repeats = ctx.repeats;
  for (const su of sus) Object.assign(su.res, { repeats, stepMs });
  for (const rate of ladder) {
    const live = sus.filter((su) => su.res.stoppedAt === undefined);
    if (!live.length) break;
    const runs = new Map(live.map((su) => [su, []]));
    for (let i = 0; i < repeats; i++) {
      for (const su of i % 2 ? [...live].reverse() : live) runs.get(su).push(await step(su, rate, stepMs));
    }
    for (const su of live) {
      const m = medianStep(runs.get(su));
      su.res.ladder.push(m);
      ctx.log(`  ${su.label} ${rate}/s median of ${m.repeats}: p50 ${m.p50} (${m.p50Min}-${m.p50Max}) p99 ${m.p99} (${m.p99Min}-${m.p99Max}) ms, loss ${m.lossPct}% -> ${m.pass ? 'pass' : 'FAIL'}${m.clientBound ? ' client-bound' : ''}`);
      if (!m.pass && m.clientBound) su.res.stoppedAt = rate;
    }
  }
  return sus.map(({ res }) => {
    // The 50k and 100k rungs (medians) are the fixed figures of the report and the goals.
    res.fixed = res.ladder.filter((x) => x.target === 50_000 || x.target === 100_000);
    const passed = res.ladder.filter((x) => x.pass);
    res.maxRate = passed.length ? passed.at(-1).target : 0; // deliveries/s
    // What bounds the maximum: the server (a failed rung above it, not client-bound
    // or disturbed), or something that makes it a lower bound.
    const above = res.ladder.filter((x) => x.target > res.maxRate);
    res.limitedBy = !above.length ? 'ladder top'
      : above.some((x) => !x.clientBound && !x.noisy) ? 'server'
        : above.some((x) => x.noisy) ? 'other load' : 'client';
    res.maxRateNote = res.limitedBy === 'server' ? '' : `lower bound: ${res.limitedBy}${above[0] ? ` at ${above[0].target}/s` : ''}`;
    return res;
  });
}

// One measurement window at `rate` deliveries/s.
async function runStep({ ctx, label, servers, sender, all, channelId, extraCpu, rate, durationMs, degree }) {
  const msgRate = rate / degree; // one message makes `degree` deliveries
  await Promise.all(all.map((g) => g.all('reset')));
  await Promise.all(servers.map((s) => s.stats({ reset: true })));
  const stages0 = await stageBuckets(servers);
  const cpu0 = servers.map((s) => s.cpuSec());
  const since = Object.entries(extraCpu).map(([k, start]) => [k, start()]);
  const m0 = machineCpu();
  const t0 = nowUs();
  const s = (await sender.ws[0].call('send', { channelId, rate: msgRate, durationMs })).sent;
  await drainDeliveries(all, { expected: s * degree, stableSteps: 5, everyMs: 100 });
  const wallS = (nowUs() - t0) / 1e6;
  const cpuEach = servers.map((srv, i) => srv.cpuSec() - cpu0[i]);
  const cpuS = cpuEach.reduce((a, b) => a + b, 0);
  const extra = Object.fromEntries(since.map(([k, f]) => [k, round2(f() / wallS)]));
  const machine = machineCoresSince(m0);
  const st = await Promise.all(servers.map((srv) => srv.stats()));
  const stages = stagesBetween(stages0, await stageBuckets(servers));
  const snaps = await Promise.all(all.map((g) => g.snap()));
  const lat = snaps[0].lat.merge(snaps[1].lat);
  const clientCpu = [...snaps[0].clientCpuCores, ...snaps[1].clientCpuCores];
  const delivered = snaps[0].deliveries + snaps[1].deliveries;
  const expected = s * degree;
  const L = lat.summaryMs();
  const x = {
    target: Math.round(rate), msgsPerSec: Math.round(msgRate * 10) / 10, sent: s, delivered,
    // Rate actually delivered over the send window (a backlog drained later counts as late, not lost).
    achieved: Math.round(delivered / (durationMs / 1000)),
    lossPct: expected ? Math.round((1 - Math.min(delivered, expected) / expected) * 10000) / 100 : 0,
    p50: L.p50, p99: L.p99, max: L.max,
    serverCpuCores: round2(cpuS / wallS),
    serverCpuUsPerDelivery: delivered ? round2((cpuS * 1e6) / delivered) : null,
    serverEldP99Ms: Math.max(...st.map((v) => v.eld.p99)), serverRssMB: Math.round(Math.max(...st.map((v) => v.rss)) / 2 ** 20), serverHeapMB: Math.round(Math.max(...st.map((v) => v.heapUsed)) / 2 ** 20),
    clientCpu, clientEldP99Ms: Math.round(Math.max(snaps[0].clientEldP99Ms, snaps[1].clientEldP99Ms) * 10) / 10,
    acks: snaps[0].acks, closed: mergeCounts(snaps[0].closed, snaps[1].closed), errors: snaps[0].errors + snaps[1].errors,
    errorSamples: [...snaps[0].errorSamples, ...snaps[1].errorSamples].slice(0, 3), otherFrames: mergeCounts(snaps[0].other, snaps[1].other),
  };
  // Several instances: each one's cores and event-loop p99 (the sums and maxima are above).
  if (servers.length > 1) {
    x.serverCpuCoresEach = cpuEach.map((c) => round2(c / wallS));
    x.serverEldP99MsEach = st.map((v) => v.eld.p99);
  }
  if (Object.keys(extra).length) x.extraCores = extra;
  // Parley: where the time went inside the server (lib/parley.mjs, stagesBetween).
  for (const [k, v] of Object.entries(stages)) Object.assign(x, { [`${k}P50`]: v.p50, [`${k}P99`]: v.p99 });
  // The client shares the two cores: a client process near a full core cannot
  // keep up, and clients taking a whole core between them starve the server.
  x.clientBound = clientCpu.some((c) => c >= 0.9) || clientCpu.reduce((a, b) => a + b, 0) >= 1.0;
  // CPU used on the machine by neither the server nor the load generator
  // (kernel network work not charged to a process lands here too, so a little is normal).
  x.machineBusyCores = round2(machine.busyCores);
  x.stealCores = round2(machine.stealCores);
  x.otherCores = round2(machine.busyCores - x.serverCpuCores - clientCpu.reduce((a, b) => a + b, 0) - Object.values(extra).reduce((a, b) => a + b, 0));
  x.noisy = x.otherCores > 0.3 || x.stealCores > 0.2;
  const each = x.serverCpuCoresEach ? ` (${x.serverCpuCoresEach.join('+')})` : '';
  const ex = Object.entries(extra).map(([k, v]) => `, ${k} ${v}`).join('');
  const inside = x.walkP50 !== undefined ? ` (inside: ack p50 ${x.ackP50} p99 ${x.ackP99}, walk p50 ${x.walkP50} p99 ${x.walkP99})` : '';
  ctx.log(`  ${label} ${x.target}/s: p50 ${x.p50} p99 ${x.p99} ms${inside}, loss ${x.lossPct}%, srv ${x.serverCpuCores} cores${each}${ex}, client ${clientCpu.join('/')}, other ${x.otherCores}${x.clientBound ? ' CLIENT-BOUND' : ''}${x.noisy ? ' NOISY' : ''}`);
  return x;
}

// The per-rung table rows (fanout and scale reports).
export function ladderRows(label, v) {
  return (v.ladder || []).map((x) => ({
    server: label, 'deliv/s': x.target, runs: `${x.passes}/${x.repeats} pass`,
    'p50 med': x.p50, 'p50 min-max': `${x.p50Min}-${x.p50Max}`, 'p99 med': x.p99, 'p99 min-max': `${x.p99Min}-${x.p99Max}`,
    'loss %': x.lossPct, result: x.pass ? 'pass' : 'FAIL', 'srv us/deliv': x.serverCpuUsPerDelivery,
    'srv cores': x.serverCpuCoresEach ? `${x.serverCpuCores} (${x.serverCpuCoresEach.join('+')})` : x.serverCpuCores,
    'srv EL p99 ms': x.serverEldP99MsEach ? x.serverEldP99MsEach.join('/') : x.serverEldP99Ms,
    // Parley only: frame read to ack (the commit), and one commit's walk over the members' sockets.
    'ack p50/p99 ms': x.ackP50 !== undefined ? `${x.ackP50}/${x.ackP99}` : undefined,
    'walk p50/p99 ms': x.walkP50 !== undefined ? `${x.walkP50}/${x.walkP99}` : undefined,
    ...(x.extraCores ? Object.fromEntries(Object.entries(x.extraCores).map(([k, c]) => [`${k} cores`, c])) : {}),
    'client cores': x.clientCpu?.join('+'), flags: [x.clientBound && 'client-bound', x.noisy && 'other load'].filter(Boolean).join(', '),
  }));
}
