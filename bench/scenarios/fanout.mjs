// Scenario 1: fan-out. 1,000 member connections in one channel, one of them
// sending 100-byte messages open-loop. Measures a fixed ladder of delivery
// rates (LADDER), each rung `--repeats` times (default 3), and reports per rung
// the median p50/p99 and their spread; the maximum is the highest rung whose
// median p99 <= 50 ms with no lost deliveries (every rung is measured, failed
// ones too, since failures are not monotonic).
import { startTarget } from '../lib/targets.mjs';
import { eachServer } from '../lib/util.mjs';
import { openChannel } from '../lib/channel.mjs';
import { runLadder, ladderRows, P99_GOAL_MS } from '../lib/ladder.mjs';

export { LADDER } from '../lib/ladder.mjs';

export async function run(ctx) {
  const out = { members: ctx.users.fan.length, messageBytes: 100, p99GoalMs: P99_GOAL_MS, servers: {} };
  return eachServer(ctx, 'fanout', out, (kind) => runOne(ctx, kind));
}

async function runOne(ctx, kind) {
  const users = ctx.users.fan;
  const t = await startTarget(ctx, kind);
  let ch;
  try {
    ch = await openChannel(ctx, { kind, srv: t.srv, base: t.base, framing: t.framing, users, name: 'bench-fanout', names: ['snd', 'rcv'] });
    const l = await runLadder({ ctx, label: t.kind, servers: [t.srv], ch, members: users.length });
    return { connected: ch.connected, connectMs: ch.connectMs, ...l };
  } finally {
    await ch?.close();
    await t.srv.stop();
  }
}

export function report(r, { table, ratio, LABEL }) {
  const rows = Object.entries(r.servers).map(([k, v]) => {
    if (v.error) return { server: LABEL[k], error: v.error.slice(0, 80) };
    const at = (rate) => v.fixed.find((x) => x.target === rate) || {};
    return {
      server: LABEL[k], conns: v.connected, 'frames/msg': v.degree,
      'max deliv/s (p99<=50ms)': v.maxRate, note: v.maxRateNote,
      'p50@50k': at(50_000).p50, 'p99@50k': at(50_000).p99,
      'p50@100k': at(100_000).p50, 'p99@100k': at(100_000).p99,
      'srv us/deliv@100k': at(100_000).serverCpuUsPerDelivery, 'srv cores@100k': at(100_000).serverCpuCores, 'srv EL p99 ms@100k': at(100_000).serverEldP99Ms,
      'client cores@100k': at(100_000).clientCpu?.join('+'), 'other cores@100k': at(100_000).otherCores,
    };
  });
  const p = r.servers.parley, ratios = {};
  for (const ref of ['ws', 'sio']) {
    const v = r.servers[ref];
    if (!p?.maxRate || !v?.maxRate) continue;
    ratios[`Parley/${LABEL[ref]} max rate`] = ratio(p.maxRate, v.maxRate);
  }
  // Every rung of every server: medians over the repeats and the min-max spread.
  const lrows = Object.entries(r.servers).flatMap(([k, v]) => ladderRows(LABEL[k], v));
  const reps = Object.values(r.servers).find((v) => v.repeats)?.repeats;
  const text = table(`Fan-out: ${r.members} members, ${r.messageBytes}-byte messages (latency ms, rates deliveries/s; medians of ${reps ?? '?'} runs)`, rows)
    + table(`Fan-out ladder: median of the repeats per rung, pass = median p99 <= ${r.p99GoalMs} ms and no loss`, lrows);
  return { text, ratios };
}
