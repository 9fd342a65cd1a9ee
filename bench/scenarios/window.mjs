// Scenario: window. One sender keeps 16 messages in flight (closed loop: the
// next message.send leaves when a message.ack comes back) into a 500-member
// channel, all 500 member connections receiving. Its throughput is set by the
// end-to-end latency of one message, persistence included (for Parley: the ack
// leaves after the commit). Both references answer every message.send with a
// message.ack (bench/servers/*.mjs), sent before they fan the message out, so
// the same client code measures all three. Reported: sent (acked) msgs/s,
// deliveries/s, ack latency, end-to-end delivery latency, server CPU; the median
// over `--repeats` runs (default 3) with the spread of the throughput.
import { startTarget } from '../lib/targets.mjs';
import { openChannel, drainDeliveries } from '../lib/channel.mjs';
import { nowUs, machineCpu, machineCoresSince, median, round2, eachServer } from '../lib/util.mjs';

const WINDOW = 16;

export async function run(ctx) {
  const out = { members: ctx.users.win.length, window: WINDOW, messageBytes: 100, servers: {} };
  return eachServer(ctx, 'window', out, (kind) => runOne(ctx, kind));
}

async function runOne(ctx, kind) {
  const users = ctx.users.win;
  const t = await startTarget(ctx, kind);
  // The sender has a process of its own (its acks are not queued behind the
  // receivers' frames); the 499 other members are split over two processes.
  let ch;
  try {
    ch = await openChannel(ctx, { kind, srv: t.srv, base: t.base, framing: t.framing, users, name: 'bench-window', names: ['wsnd', 'wrcv'] });
    const { sender, all, channelId } = ch;
    const durationMs = ctx.quick ? 1500 : 3000;
    await pass({ t, sender, all, channelId, durationMs: ctx.quick ? 500 : 1000 }); // warm-up (JIT, SQLite cache)
    const runs = [];
    for (let i = 0; i < ctx.repeats; i++) {
      const x = await pass({ t, sender, all, channelId, durationMs });
      ctx.log(`  ${kind}: ${x.msgsPerSec} msgs/s, ${x.deliveriesPerSec} deliv/s, ack p50/p99 ${x.ackP50}/${x.ackP99} ms, e2e p50/p99 ${x.p50}/${x.p99} ms, srv ${x.serverCpuCores} cores, client ${x.clientCpu.join('/')}${x.clientBound ? ' CLIENT-BOUND' : ''}${x.noisy ? ' NOISY' : ''}`);
      runs.push(x);
    }
    // The run with the median throughput stands for the others; throughput and
    // latencies are medians, with the throughput's min-max spread.
    const sorted = [...runs].sort((a, b) => a.msgsPerSec - b.msgsPerSec);
    const res = { ...sorted[(sorted.length - 1) >> 1], connected: ch.connected, repeats: runs.length };
    for (const k of ['msgsPerSec', 'deliveriesPerSec', 'ackP50', 'ackP99', 'p50', 'p99', 'serverCpuCores', 'serverCpuUsPerMsg', 'serverEldP99Ms']) res[k] = median(runs.map((x) => x[k]));
    res.msgsPerSecMin = sorted[0].msgsPerSec;
    res.msgsPerSecMax = sorted.at(-1).msgsPerSec;
    res.clientBound = runs.filter((x) => x.clientBound).length * 2 > runs.length;
    res.noisy = runs.filter((x) => x.noisy).length * 2 > runs.length;
    res.runs = runs;
    return res;
  } finally {
    await ch?.close();
    await t.srv.stop();
  }
}

// One closed-loop window of `durationMs`, then (bounded) until the last
// deliveries have arrived.
async function pass({ t, sender, all, channelId, durationMs }) {
  await Promise.all(all.map((g) => g.all('reset')));
  await t.srv.stats({ reset: true });
  const cpu0 = t.srv.cpuSec();
  const m0 = machineCpu();
  const t0 = nowUs();
  const w = await sender.ws[0].call('window', { targets: [{ channelId }], window: WINDOW, durationMs, tag: 'win' });
  const sendS = w.elapsedMs / 1000;
  await drainDeliveries(all, { stableSteps: 3, everyMs: 50 });
  const wallS = (nowUs() - t0) / 1e6;
  const cpuS = t.srv.cpuSec() - cpu0;
  const machine = machineCoresSince(m0);
  const st = await t.srv.stats();
  const [ss, rs] = await Promise.all(all.map((g) => g.snap()));
  const deliveries = ss.deliveries + rs.deliveries; // the sender's own echo counts, when the server sends one
  const E = rs.lat.summaryMs(), A = ss.ackLat.summaryMs();
  const clientCpu = [...ss.clientCpuCores, ...rs.clientCpuCores];
  const x = {
    sent: w.sent, acks: ss.acks, unacked: w.unacked, errors: ss.errors + rs.errors, errorSamples: [...ss.errorSamples, ...rs.errorSamples].slice(0, 3),
    deliveries, deliveriesPerMsg: ss.acks ? Math.round((deliveries / ss.acks) * 10) / 10 : 0,
    msgsPerSec: Math.round(ss.acks / sendS), deliveriesPerSec: Math.round(deliveries / sendS),
    ackP50: A.p50, ackP99: A.p99, p50: E.p50, p99: E.p99, max: E.max,
    serverCpuCores: round2(cpuS / wallS), serverCpuUsPerMsg: ss.acks ? Math.round((cpuS * 1e6) / ss.acks) : null,
    serverEldP99Ms: st.eld.p99, clientCpu, closed: { ...ss.closed, ...rs.closed },
  };
  // Same rule as fan-out: a client process near a full core, or the client
  // processes taking a whole core between them, make the figure a lower bound.
  x.clientBound = clientCpu.some((c) => c >= 0.9) || clientCpu.reduce((a, b) => a + b, 0) >= 1.0;
  x.otherCores = round2(machine.busyCores - x.serverCpuCores - clientCpu.reduce((a, b) => a + b, 0));
  x.noisy = x.otherCores > 0.3 || machine.stealCores > 0.2;
  return x;
}

export function report(r, { table, ratio, LABEL }) {
  const rows = Object.entries(r.servers).map(([k, v]) => v.error ? { server: LABEL[k], error: v.error.slice(0, 80) } : {
    server: LABEL[k], conns: v.connected, 'msgs/s': v.msgsPerSec, 'msgs/s min-max': `${v.msgsPerSecMin}-${v.msgsPerSecMax}`,
    'deliv/s': v.deliveriesPerSec, 'frames/msg': v.deliveriesPerMsg, 'ack p50 ms': v.ackP50, 'ack p99 ms': v.ackP99,
    'e2e p50 ms': v.p50, 'e2e p99 ms': v.p99, 'srv cores': v.serverCpuCores, 'srv us/msg': v.serverCpuUsPerMsg,
    'srv EL p99 ms': v.serverEldP99Ms, 'client cores': v.clientCpu.join('+'), errors: v.errors || '', 'other cores': v.otherCores,
    flags: [v.clientBound && 'client-bound', v.noisy && 'other load'].filter(Boolean).join(', '),
  });
  const p = r.servers.parley?.msgsPerSec, ratios = {};
  for (const ref of ['ws', 'sio']) {
    const v = r.servers[ref]?.msgsPerSec;
    if (p && v) ratios[`Parley/${LABEL[ref]} window throughput`] = ratio(p, v);
  }
  const reps = Object.values(r.servers).find((v) => v.repeats)?.repeats;
  return { text: table(`Window: one sender, ${r.window} messages in flight, ${r.members}-member channel (medians of ${reps ?? '?'} runs; e2e = send to message.new)`, rows), ratios };
}
