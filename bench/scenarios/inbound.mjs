// Scenario 5: inbound cost. One connection, alone in a channel, keeps a window
// of message.send frames in flight; server CPU time (all threads, /proc) divided
// by the acknowledged messages is the cost of taking one message in: parse,
// validate, (for Parley) persist, acknowledge, echo to the sender's connection.
// A second pass sends invalid payloads to time the validation-reject path.
import { Group } from '../lib/workers.mjs';
import { eachServer, JIT_WARM_MS } from '../lib/util.mjs';
import { startTarget } from '../lib/targets.mjs';
import { createChannel, tokenFor } from '../lib/parley.mjs';

export async function run(ctx) {
  const out = { window: 16, servers: {} };
  return eachServer(ctx, 'inbound', out, (kind) => runOne(ctx, kind, out.window));
}

async function runOne(ctx, kind, window) {
  const [user] = ctx.users.inb;
  const t = await startTarget(ctx, kind);
  const g = new Group(1, 'inb');
  try {
    let channelId, joinName;
    if (kind === 'parley') channelId = await createChannel(t.srv, 'bench-inbound', [user]);
    else joinName = 'bench-inbound';
    const c = await g.connect([tokenFor(user)], { base: t.base, framing: t.framing, joinName });
    channelId ??= c.channelId;
    if (!c.connected) throw new Error(`connect failed: ${c.errors.join('; ')}`);
    const durationMs = ctx.quick ? 1500 : 4000;
    const pass = async (invalid, ms) => {
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
    // Warm-ups (JIT, SQLite cache): each pass's own code paths, under its own load (JIT_WARM_MS).
    await pass(false, ctx.quick ? 300 : JIT_WARM_MS);
    const valid = await pass(false, durationMs);
    await pass(true, ctx.quick ? 300 : JIT_WARM_MS / 2);
    const invalid = await pass(true, durationMs);
    ctx.log(`  ${kind}: ${valid.serverCpuUsPerMsg} us/msg (${valid.perSec}/s), reject ${invalid.serverCpuUsPerMsg} us`);
    return { valid, invalid };
  } finally {
    await g.kill();
    await t.srv.stop();
  }
}

export function report(r, { table, ratio, LABEL }) {
  const rows = Object.entries(r.servers).map(([k, v]) => v.error ? { server: LABEL[k], error: v.error.slice(0, 80) } : {
    server: LABEL[k], 'us CPU/message.send': v.valid.serverCpuUsPerMsg, 'msgs/s (1 conn)': v.valid.perSec,
    'ack p50 ms': v.valid.ackP50, 'ack p99 ms': v.valid.ackP99, 'us CPU/rejected send': v.invalid.serverCpuUsPerMsg,
    'client cores': v.valid.clientCpu.join('+'),
  });
  const p = r.servers.parley?.valid?.serverCpuUsPerMsg, ratios = {};
  for (const ref of ['ws', 'sio']) {
    const v = r.servers[ref]?.valid?.serverCpuUsPerMsg;
    if (p && v) ratios[`Parley/${LABEL[ref]} inbound CPU per message (lower is better)`] = ratio(p, v);
  }
  return { text: table(`Inbound cost: server CPU per message.send (window ${r.window}, one connection)`, rows), ratios };
}
