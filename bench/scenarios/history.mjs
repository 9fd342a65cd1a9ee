// Scenario 4: history. GET /channels/:id/messages?limit=50 under autocannon,
// Parley first, then the bare node:http + better-sqlite3 handler on the same
// file (one server at a time, so each has the machine to itself).
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, track, startServer, freePort } from '../lib/servers.mjs';
import { startTarget } from '../lib/targets.mjs';
import { createChannel, tokenFor, api, JWT_SECRET } from '../lib/parley.mjs';
import { pool } from '../lib/util.mjs';

const CONNECTIONS = 16;
const MESSAGES = 200;

export async function run(ctx) {
  if (!ctx.parley) return { skipped: 'Parley not available (the bare handler reads Parley\'s database)', servers: {} };
  const [user] = ctx.users.hist;
  const token = tokenFor(user);
  const durationS = ctx.quick ? 2 : 5;
  const out = { limit: 50, messagesInChannel: MESSAGES, connections: CONNECTIONS, durationS, servers: {} };

  ctx.log('history: parley');
  const t = await startTarget(ctx, 'parley');
  let path;
  try {
    const channelId = await createChannel(t.srv, 'bench-history', [user]);
    path = `/channels/${channelId}/messages?limit=50`;
    await pool(Array.from({ length: MESSAGES }, (_, i) => i), 4, (i) =>
      api(t.srv, 'POST', `/channels/${channelId}/messages`, token, { text: `history message ${i} `.padEnd(100, 'x'), clientMsgId: `hist-${i}` }));
    out.servers.parley = await measure(ctx, t.srv, path, token, durationS);
  } finally { await t.srv.stop(); }

  ctx.log('history: bare node:http + better-sqlite3');
  const bare = await startServer({ name: 'bare-history', script: join(BENCH_DIR, 'servers/bare-history.mjs'), env: { DB_FILE: ctx.dbFile, JWT_SECRET }, port: await freePort(), logDir: ctx.logDir });
  try { out.servers.bare = await measure(ctx, bare, path, token, durationS); }
  finally { await bare.stop(); }

  // Same page from both? (same ids in the same order), and the same JSON, byte for byte: the
  // bare handler is only a floor if it does all of Parley's work (every field of every Message).
  const ids = (x) => x.sample.ids.join(',');
  out.samePage = ids(out.servers.parley) === ids(out.servers.bare);
  const shape = (x) => `${x.sample.keys}|${x.sample.messageKeys}`;
  out.sameShape = shape(out.servers.parley) === shape(out.servers.bare);
  out.sameJson = out.servers.parley.sample.json === out.servers.bare.sample.json;
  for (const v of Object.values(out.servers)) {
    delete v.sample.ids;
    delete v.sample.json;
  }
  return out;
}

async function measure(ctx, srv, path, token, durationS) {
  const page = await api(srv, 'GET', path, token);
  const sample = {
    messages: page.messages?.length, hasMore: page.hasMore, bytes: JSON.stringify(page).length, ids: (page.messages || []).map((m) => m.id), json: JSON.stringify(page),
    keys: Object.keys(page).join(','), messageKeys: Object.keys(page.messages?.[0] || {}).join(','),
  };
  const opts = { url: srv.url + path, headers: { authorization: `Bearer ${token}` }, connections: CONNECTIONS };
  await cannon({ ...opts, duration: 1 }); // warm-up
  const cpu0 = srv.cpuSec();
  const r = await cannon({ ...opts, duration: durationS });
  const cpuS = srv.cpuSec() - cpu0;
  const res = { ...r, reqPerSec: Math.round(r.reqPerSec), serverCpuUsPerReq: Math.round((cpuS * 1e6) / r.total), sample };
  ctx.log(`  ${srv.name}: ${res.reqPerSec} req/s, p99 ${r.latencyMs.p99} ms, ${sample.messages} msgs/page, ${r.non2xx} non-2xx`);
  return res;
}

function cannon(opts) {
  return new Promise((resolve, reject) => {
    const c = track(fork(join(BENCH_DIR, 'lib/cannon.mjs'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
    c.once('message', resolve);
    c.once('exit', (code) => reject(new Error(`autocannon exited ${code}`)));
    c.send(opts);
  });
}

export function report(r, { table, ratio }) {
  if (r.skipped) return { text: table(`History (skipped: ${r.skipped})`, []), ratios: {} };
  const name = { parley: 'Parley', bare: 'bare http+sqlite' };
  const rows = Object.entries(r.servers).map(([k, v]) => ({
    server: name[k], 'req/s': v.reqPerSec, 'p50 ms': v.latencyMs.p50, 'p99 ms': v.latencyMs.p99, 'non-2xx': v.non2xx, errors: v.errors,
    'msgs/page': v.sample.messages, 'page bytes': v.sample.bytes, 'srv us/req': v.serverCpuUsPerReq,
  }));
  const ratios = {};
  const p = r.servers.parley?.reqPerSec, b = r.servers.bare?.reqPerSec;
  if (p && b) ratios['Parley/bare history req/s'] = ratio(p, b);
  return { text: table(`History: GET /channels/:id/messages?limit=50, autocannon ${r.connections} connections x ${r.durationS}s (same page: ${r.samePage ? 'yes' : 'NO'}, same JSON: ${r.sameJson ? 'yes' : r.sameShape ? 'NO (same keys)' : 'NO'})`, rows), ratios };
}
