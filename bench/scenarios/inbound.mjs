// Scenario 5: inbound cost. One connection, alone in a channel, keeps a window
// of message.send frames in flight; server CPU time (all threads, /proc) divided
// by the acknowledged messages is the cost of taking one message in: parse,
// validate, (for Parley) persist, acknowledge, echo to the sender's connection.
// A second pass sends invalid payloads to time the validation-reject path.
//
// The servers are measured in rounds, not one after the other: all of them are started and
// warmed first, then each round measures each server once (Parley, ws-ref, socket.io-ref,
// Parley, ...), `--repeats` rounds. An idle server costs nothing, and a machine whose speed
// drifts over minutes (seen on a 2-core VM: the ws reference's figure moved ±25 % between runs)
// then moves every server's figures of a round alike, so the ratio of one round, Parley's
// figure over the reference's measured seconds later, is what is compared: the median of the
// rounds' ratios, with their spread.
import { Group } from '../lib/workers.mjs';
import { JIT_WARM_MS, median, round2, serverFailed } from '../lib/util.mjs';
import { startTarget } from '../lib/targets.mjs';
import { createChannel, tokenFor } from '../lib/parley.mjs';

export async function run(ctx) {
  const out = { window: 16, repeats: ctx.repeats, servers: {}, rounds: [] };
  const [user] = ctx.users.inb;
  const live = [];
  const pass = passOf(out.window);
  try {
    // Start and warm each server (JIT, SQLite cache) under its own load (JIT_WARM_MS).
    for (const kind of ctx.kinds) {
      ctx.log(`inbound: ${kind} (start, warm-up)`);
      try {
        const s = await open(ctx, kind, user);
        live.push(s);
        await pass(s, false, ctx.quick ? 300 : JIT_WARM_MS);
      } catch (e) {
        serverFailed(ctx, 'inbound', out, kind, e);
      }
    }
    const durationMs = ctx.quick ? 1500 : 4000;
    const runs = new Map(live.map((s) => [s.kind, []]));
    for (let r = 0; r < ctx.repeats; r++) {
      const round = {};
      for (const s of live) {
        if (out.servers[s.kind]?.error) continue;
        try {
          const x = await pass(s, false, durationMs);
          runs.get(s.kind).push(x);
          round[s.kind] = x.serverCpuUsPerMsg;
        } catch (e) {
          serverFailed(ctx, 'inbound', out, s.kind, e);
        }
      }
      ctx.log(`  round ${r + 1}: ${Object.entries(round).map(([k, v]) => `${k} ${v} us/msg`).join(', ')}`);
      out.rounds.push(round);
    }
    // The reject path, once per server (not a goal; its cost is shown beside the accepted one).
    for (const s of live) {
      if (out.servers[s.kind]?.error) continue;
      try {
        await pass(s, true, ctx.quick ? 300 : JIT_WARM_MS / 2);
        const invalid = await pass(s, true, durationMs);
        out.servers[s.kind] = { valid: summarize(runs.get(s.kind)), invalid };
        ctx.log(`  ${s.kind}: ${out.servers[s.kind].valid.serverCpuUsPerMsg} us/msg (median of ${runs.get(s.kind).length}), reject ${invalid.serverCpuUsPerMsg} us`);
      } catch (e) {
        serverFailed(ctx, 'inbound', out, s.kind, e);
      }
    }
  } finally {
    for (const s of live) {
      await s.g.kill();
      await s.t.srv.stop();
    }
  }
  out.ratios = {};
  for (const ref of ['ws', 'sio']) {
    const rs = out.rounds.map((r) => (r.parley && r[ref] ? r.parley / r[ref] : NaN)).filter(Number.isFinite);
    if (rs.length) out.ratios[ref] = { median: round2(median(rs)), min: round2(Math.min(...rs)), max: round2(Math.max(...rs)), rounds: rs.map(round2) };
  }
  return out;
}

// A started server with one connected client, alone in its channel.
async function open(ctx, kind, user) {
  const t = await startTarget(ctx, kind);
  const g = new Group(1, `inb-${kind}`);
  try {
    let channelId, joinName;
    if (kind === 'parley') channelId = await createChannel(t.srv, 'bench-inbound', [user]);
    else joinName = 'bench-inbound';
    const c = await g.connect([tokenFor(user)], { base: t.base, framing: t.framing, joinName });
    channelId ??= c.channelId;
    if (!c.connected) throw new Error(`connect failed: ${c.errors.join('; ')}`);
    return { kind, t, g, channelId };
  } catch (e) {
    await g.kill();
    await t.srv.stop();
    throw e;
  }
}

function passOf(window) {
  return async ({ t, g, channelId }, invalid, ms) => {
    await g.all('reset');
    const cpu0 = t.srv.cpuSec();
    const w = await g.ws[0].call('window', { targets: [{ channelId }], window, durationMs: ms, invalid, tag: invalid ? 'bad' : 'in' });
    const cpuS = t.srv.cpuSec() - cpu0;
    const s = await g.snap();
    const n = invalid ? s.errors : s.acks;
    return {
      messages: n, perSec: Math.round(n / (w.elapsedMs / 1000)),
      serverCpuUsPerMsg: n ? Math.round((cpuS * 1e6) / n * 10) / 10 : null,
      serverCpuCores: Math.round((cpuS / (w.elapsedMs / 1000)) * 100) / 100,
      ackP50: s.ackLat.summaryMs().p50, ackP99: s.ackLat.summaryMs().p99,
      clientCpu: s.clientCpuCores, unexpectedErrors: invalid ? 0 : s.errors, errorSamples: invalid ? s.errorSamples.slice(0, 1) : s.errorSamples,
    };
  };
}

// The run with the median CPU per message stands for the others, with the spread of that figure.
function summarize(runs) {
  const sorted = [...runs].sort((a, b) => a.serverCpuUsPerMsg - b.serverCpuUsPerMsg);
  return {
    ...sorted[(sorted.length - 1) >> 1],
    serverCpuUsPerMsg: median(runs.map((x) => x.serverCpuUsPerMsg)),
    serverCpuUsPerMsgMin: sorted[0].serverCpuUsPerMsg,
    serverCpuUsPerMsgMax: sorted.at(-1).serverCpuUsPerMsg,
    repeats: runs.length,
    runs,
  };
}

export function report(r, { table, LABEL }) {
  const rows = Object.entries(r.servers).map(([k, v]) => v.error ? { server: LABEL[k], error: v.error.slice(0, 80) } : {
    server: LABEL[k], 'us CPU/message.send': v.valid.serverCpuUsPerMsg,
    'spread': `${v.valid.serverCpuUsPerMsgMin}-${v.valid.serverCpuUsPerMsgMax}`, 'msgs/s (1 conn)': v.valid.perSec,
    'ack p50 ms': v.valid.ackP50, 'ack p99 ms': v.valid.ackP99, 'us CPU/rejected send': v.invalid.serverCpuUsPerMsg,
    'client cores': v.valid.clientCpu.join('+'),
  });
  const ratios = {};
  for (const ref of ['ws', 'sio']) {
    const x = r.ratios?.[ref];
    if (x) ratios[`Parley/${LABEL[ref]} inbound CPU per message (median of the rounds' ratios, lower is better)`] = x.median;
  }
  const spread = Object.entries(r.ratios ?? {}).map(([k, x]) => `Parley/${LABEL[k]} per round: ${x.rounds.join(', ')}`).join('; ');
  return {
    text: table(`Inbound cost: server CPU per message.send (window ${r.window}, one connection; medians of ${r.repeats ?? '?'} rounds, servers alternating)`, rows) + (spread ? `\n  ${spread}\n` : ''),
    ratios,
  };
}
