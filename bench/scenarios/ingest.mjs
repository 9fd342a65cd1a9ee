// Scenario 2: ingest. 200 DM pairs; both users of a pair send to each other
// (`to: username`) with a window of unacknowledged messages. Counts messages
// persisted and acknowledged per second, then checks that the `messages`
// table grew by exactly the number of acks (persist-then-ack, nothing lost,
// nothing doubled). Parley only: the references keep nothing.
import { Group } from '../lib/workers.mjs';
import { startTarget } from '../lib/targets.mjs';
import { tokenFor, countRows } from '../lib/parley.mjs';

const WINDOW = 8;

export async function run(ctx) {
  if (!ctx.parley) return { skipped: 'Parley not available', servers: {} };
  ctx.log('ingest: parley');
  const users = ctx.users.dm;
  const t = await startTarget(ctx, 'parley');
  const g = new Group(2, 'ing');
  try {
    const peer = (i) => users[i ^ 1].username; // pairs (0,1), (2,3), ...
    const metas = users.map((_, i) => ({ target: { to: peer(i) } }));
    const c = await g.connect(users.map(tokenFor), { base: t.base, framing: t.framing, concurrency: 50 }, metas);
    if (c.failed) throw new Error(`connect: ${c.connected}/${users.length} (${c.errors.join('; ')})`);
    // Warm-up: creates the 200 DM channels (created on first use) and warms JIT and caches.
    await g.all('window', { window: 1, durationMs: ctx.quick ? 300 : 1000, tag: 'warm' });
    await g.snap();
    const rows0 = countRows(ctx.dbFile, 'SELECT COUNT(*) FROM messages');
    const cpu0 = t.srv.cpuSec();
    await t.srv.stats({ reset: true });
    const durationMs = ctx.quick ? 2000 : 6000;
    const ws = await g.all('window', { window: WINDOW, durationMs, tag: 'ing' });
    const elapsedS = Math.max(...ws.map((w) => w.elapsedMs)) / 1000;
    const cpuS = t.srv.cpuSec() - cpu0;
    const st = await t.srv.stats();
    const s = await g.snap();
    const rows1 = countRows(ctx.dbFile, 'SELECT COUNT(*) FROM messages');
    const res = {
      pairs: users.length / 2, window: WINDOW, senders: users.length,
      sent: ws.reduce((a, w) => a + w.sent, 0), acks: s.acks, unacked: ws.reduce((a, w) => a + w.unacked, 0), errors: s.errors, errorSamples: s.errorSamples,
      rowsAdded: rows1 - rows0, msgsPerSec: Math.round(s.acks / elapsedS), elapsedS,
      ackP50: s.ackLat.summaryMs().p50, ackP99: s.ackLat.summaryMs().p99,
      deliveries: s.deliveries, serverCpuCores: Math.round((cpuS / elapsedS) * 100) / 100,
      serverCpuUsPerMsg: s.acks ? Math.round((cpuS * 1e6) / s.acks) : null, serverEldP99Ms: st.eld.p99,
      clientCpu: s.clientCpuCores, closed: s.closed,
    };
    res.rowsMatchAcks = res.rowsAdded === res.acks;
    ctx.log(`  parley: ${res.msgsPerSec} msgs/s, rows +${res.rowsAdded} vs acks ${res.acks}`);
    return { servers: { parley: res } };
  } finally {
    await g.kill();
    await t.srv.stop();
  }
}

export function report(r, { table, LABEL }) {
  const rows = Object.entries(r.servers).map(([k, v]) => ({
    server: LABEL[k], pairs: v.pairs, 'acked msgs/s': v.msgsPerSec, acks: v.acks, 'rows added': v.rowsAdded,
    'rows == acks': v.rowsMatchAcks ? 'yes' : 'NO', errors: v.errors, 'ack p50 ms': v.ackP50, 'ack p99 ms': v.ackP99,
    'srv us/msg': v.serverCpuUsPerMsg, 'srv cores': v.serverCpuCores, 'client cores': v.clientCpu.join('+'),
  }));
  return { text: table(`Ingest: DM pairs, window ${r.servers.parley?.window ?? WINDOW} per sender${r.skipped ? ` (skipped: ${r.skipped})` : ''}`, rows), ratios: {} };
}
