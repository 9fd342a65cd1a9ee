// Scenario 2: ingest. 200 DM pairs; both users of a pair send to each other
// (`to: username`) with a window of unacknowledged messages. Counts messages
// persisted and acknowledged per second, then checks that the `messages`
// table grew by exactly the number of acks (persist-then-ack, nothing lost,
// nothing doubled). Parley's rows: the default SQLite file, and PostgreSQL (a
// schema of the harness's own, as in the cluster scenario; one instance, no
// Redis), skipped with a note when PostgreSQL cannot be reached. Then the same
// load against each reference server of the run (--servers): they keep
// nothing, so their rows are the ceiling this machine and this client put on
// the load, beside which Parley's figure is read (not a goal of their own).
import { Group } from '../lib/workers.mjs';
import { startTarget } from '../lib/targets.mjs';
import { tokenFor, countRows, startParley, withPg, resetPgSchema, seedPgUsers, pgBaseUrl, pgSchemaUrl, redact } from '../lib/parley.mjs';
import { JIT_WARM_MS, postgresCpu, postgresCpuSince, round2 } from '../lib/util.mjs';

const WINDOW = 8;
const SCHEMA = 'bench_ingest';
const COUNT = 'SELECT COUNT(*) AS n FROM messages';
const LABELS = { parleyPg: 'Parley (PostgreSQL)' };

export async function run(ctx) {
  const servers = {};
  if (ctx.parley) {
    ctx.log('ingest: parley');
    const t = await startTarget(ctx, 'parley');
    try { servers.parley = await measure(ctx, t, async () => countRows(ctx.dbFile, COUNT)); }
    finally { await t.srv.stop(); }
    servers.parleyPg = await onPostgres(ctx);
  }
  // The references keep nothing, so their rows are this machine's ceiling for the same load from
  // the same client: what a server that persists nothing reaches, not a goal.
  for (const kind of ctx.kinds.filter((k) => k !== 'parley')) {
    ctx.log(`ingest: ${kind} (keeps nothing: the machine's ceiling)`);
    let t;
    try {
      t = await startTarget(ctx, kind);
      servers[kind] = await measure(ctx, t, null);
    } catch (e) {
      servers[kind] = { error: String(e.message || e) };
      ctx.log(`ingest on ${kind} failed: ${e.stack || e}`);
    } finally {
      await t?.srv.stop();
    }
  }
  return { servers };
}

// The PostgreSQL row: a schema of the harness's own, one instance, no Redis.
async function onPostgres(ctx) {
  ctx.log('ingest: parley on PostgreSQL');
  const pgUrl = pgBaseUrl();
  try { await withPg(pgUrl, null, (c) => c.query('SELECT 1')); }
  catch (e) {
    const skipped = `PostgreSQL not reachable at ${redact(pgUrl)} (${e.message}); set BENCH_PG_URL`;
    ctx.log(`  ${skipped}`);
    return { skipped };
  }
  let srv;
  try {
    await resetPgSchema(pgUrl, SCHEMA);
    // The first start runs the migrations into the schema; then the users go in.
    srv = await startParley({ logDir: ctx.logDir, name: 'ingest-pg', env: { DATABASE_URL: pgSchemaUrl(pgUrl, SCHEMA), REDIS_URL: '' } });
    await seedPgUsers(pgUrl, SCHEMA, ctx.users.dm);
    const count = () => withPg(pgUrl, SCHEMA, async (c) => Number((await c.query(COUNT)).rows[0].n));
    const checkpoints = () => withPg(pgUrl, SCHEMA, checkpointCount).catch(() => null);
    const t = { srv, base: `ws://127.0.0.1:${srv.port}`, framing: 'json', kind: 'parleyPg', checkpoints };
    return { ...(await measure(ctx, t, count, true)), database: redact(pgSchemaUrl(pgUrl, SCHEMA)) };
  } catch (e) {
    ctx.log(`ingest on PostgreSQL failed: ${e.stack || e}`);
    return { error: String(e.message || e) };
  } finally {
    await srv?.stop();
    if (!ctx.keep) await resetPgSchema(pgUrl, SCHEMA).catch(() => {});
  }
}

// One ingest measurement on a started server; countRowsNow() counts Parley's `messages` (null for
// a reference, which keeps nothing). pg: also the CPU of the PostgreSQL processes (the database
// works in other processes).
async function measure(ctx, t, countRowsNow, pg = false) {
  const users = ctx.users.dm;
  const g = new Group(2, pg ? 'ingpg' : 'ing');
  try {
    const peer = (i) => users[i ^ 1].username; // pairs (0,1), (2,3), ...
    const metas = users.map((_, i) => ({ target: { to: peer(i) } }));
    const c = await g.connect(users.map(tokenFor), { base: t.base, framing: t.framing, concurrency: 50 }, metas);
    if (c.failed) throw new Error(`connect: ${c.connected}/${users.length} (${c.errors.join('; ')})`);
    // Warm-up: creates the 200 DM channels (created on first use), then the measured load itself
    // until the JIT has settled (JIT_WARM_MS), and warms the caches.
    await g.all('window', { window: 1, durationMs: ctx.quick ? 300 : 1000, tag: 'warm' });
    if (!ctx.quick) await g.all('window', { window: WINDOW, durationMs: JIT_WARM_MS, tag: 'warm' });
    await g.snap();
    const rows0 = countRowsNow ? await countRowsNow() : null;
    const cpu0 = t.srv.cpuSec();
    const db0 = pg ? postgresCpu() : null;
    const checkpoints0 = t.checkpoints ? await t.checkpoints() : null;
    await t.srv.stats({ reset: true });
    const durationMs = ctx.quick ? 2000 : 6000;
    const ws = await g.all('window', { window: WINDOW, durationMs, tag: 'ing' });
    const elapsedS = Math.max(...ws.map((w) => w.elapsedMs)) / 1000;
    const cpuS = t.srv.cpuSec() - cpu0;
    const dbS = pg ? postgresCpuSince(db0) : null;
    const checkpoints1 = t.checkpoints ? await t.checkpoints() : null;
    const st = await t.srv.stats();
    const s = await g.snap();
    const rows1 = countRowsNow ? await countRowsNow() : null;
    const res = {
      pairs: users.length / 2, window: WINDOW, senders: users.length,
      sent: ws.reduce((a, w) => a + w.sent, 0), acks: s.acks, unacked: ws.reduce((a, w) => a + w.unacked, 0), errors: s.errors, errorSamples: s.errorSamples,
      rowsAdded: countRowsNow ? rows1 - rows0 : null, msgsPerSec: Math.round(s.acks / elapsedS), elapsedS,
      ackP50: s.ackLat.summaryMs().p50, ackP99: s.ackLat.summaryMs().p99,
      deliveries: s.deliveries, deliveriesPerAck: s.acks ? round2(s.deliveries / s.acks) : null, serverCpuCores: Math.round((cpuS / elapsedS) * 100) / 100,
      serverCpuUsPerMsg: s.acks ? Math.round((cpuS * 1e6) / s.acks) : null, serverEldP99Ms: st.eld.p99,
      clientCpu: s.clientCpuCores, closed: s.closed,
      // The load generator's own cost: at a rate R it needs R times this of the machine's cores.
      clientCpuUsPerMsg: s.acks ? Math.round((s.clientCpuCores.reduce((a, c) => a + c, 0) * elapsedS * 1e6) / s.acks) : null,
    };
    if (pg) {
      // Every postgres process on the machine (the server may be shared): an upper bound.
      res.dbCpuCores = round2(dbS / elapsedS);
      res.dbCpuUsPerMsg = s.acks ? Math.round((dbS * 1e6) / s.acks) : null;
      // A checkpoint in the window (timed, every checkpoint_timeout; or WAL past max_wal_size)
      // makes each page's first change after it write the whole page to the WAL, and the
      // checkpointer's own writes count in `db us/msg`: counted, so a run can be read with it.
      res.dbCheckpoints = checkpoints0 !== null && checkpoints1 !== null ? checkpoints1 - checkpoints0 : null;
    }
    if (countRowsNow) res.rowsMatchAcks = res.rowsAdded === res.acks;
    ctx.log(`  ${t.kind ?? 'parley'}: ${res.msgsPerSec} msgs/s, ${res.serverCpuUsPerMsg} us/msg, client ${res.clientCpu.join('+')} cores${countRowsNow ? `, rows +${res.rowsAdded} vs acks ${res.acks}` : ''}`);
    return res;
  } finally {
    await g.kill();
  }
}

export function report(r, { table, LABEL }) {
  const rows = Object.entries(r.servers).map(([k, v]) => {
    const server = LABELS[k] ?? LABEL[k];
    if (v.skipped) return { server, note: `skipped: ${v.skipped}` };
    if (v.error) return { server, note: `error: ${v.error.slice(0, 100)}` };
    return {
      server, pairs: v.pairs, 'acked msgs/s': v.msgsPerSec, acks: v.acks, 'rows added': v.rowsAdded,
      'rows == acks': v.rowsMatchAcks === undefined ? 'keeps none' : v.rowsMatchAcks ? 'yes' : 'NO', 'deliv/ack': v.deliveriesPerAck, errors: v.errors, 'ack p50 ms': v.ackP50, 'ack p99 ms': v.ackP99,
      'srv us/msg': v.serverCpuUsPerMsg, 'srv cores': v.serverCpuCores, 'db cores': v.dbCpuCores, 'db us/msg': v.dbCpuUsPerMsg,
      'db checkpoints': v.dbCheckpoints, 'client cores': v.clientCpu.join('+'), 'client us/msg': v.clientCpuUsPerMsg,
    };
  });
  const p = r.servers.parley, q = r.servers.parleyPg, w = r.servers.ws, ratios = {};
  if (p?.msgsPerSec && q?.msgsPerSec) ratios['Ingest PostgreSQL/SQLite msgs/s'] = round2(q.msgsPerSec / p.msgsPerSec);
  if (p?.msgsPerSec && w?.msgsPerSec) ratios['Ingest Parley (SQLite)/ws-ref msgs/s (ws-ref keeps nothing)'] = round2(p.msgsPerSec / w.msgsPerSec);
  return { text: table(`Ingest: DM pairs, window ${r.servers.parley?.window ?? WINDOW} per sender${r.skipped ? ` (skipped: ${r.skipped})` : ''}`, rows), ratios };
}

/** PostgreSQL's checkpoints so far, timed and requested (pg_stat_checkpointer from 17, pg_stat_bgwriter before). */
async function checkpointCount(c) {
  try {
    return Number((await c.query('SELECT num_timed + num_requested AS n FROM pg_stat_checkpointer')).rows[0].n);
  } catch {
    return Number((await c.query('SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter')).rows[0].n);
  }
}
