// Parley under test: built app (`node dist/main.js`) on an SQLite file (or a
// PostgreSQL schema for the cluster scenario), users seeded straight into the
// database with a session each (argon2 is not what we measure), tokens minted
// with the same secret, channels made through the HTTP API.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import pg from 'pg';
import argon2 from 'argon2';
import jwt from 'jsonwebtoken';
import { ROOT_DIR, startServer, freePort, startRedis } from './servers.mjs';
import { pool } from './util.mjs';

export const JWT_SECRET = 'bench-secret-0123456789abcdef';
export const MAIN = join(ROOT_DIR, 'dist/main.js');

// Is there a runnable build? Build it if only the sources are there.
export function ensureBuilt(log) {
  if (existsSync(MAIN)) return true;
  if (!existsSync(join(ROOT_DIR, 'src/main.ts'))) return false;
  try {
    log('building Parley (npm run build)...');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT_DIR, stdio: 'ignore', timeout: 300_000 });
  } catch { return false; }
  return existsSync(MAIN);
}

export function parleyEnv(dbFile) {
  return {
    DATABASE_URL: `sqlite:${dbFile}`,
    JWT_SECRET,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_SEC: '0', // load tests send far above a person's rate
    HTTP_RATE_LIMIT: 'false', // and register and send over HTTP far above it too
    QUOTA_CONNECTIONS_PER_IP: '0', // every client of the harness is 127.0.0.1
    QUOTA_CONNECTIONS_PER_USER: '0',
    SEND_BUFFER_CAP_BYTES: String(256 * 1024 * 1024), // measure the server, not the slow-consumer guard
  };
}

// env: overrides (DATABASE_URL, REDIS_URL, ...); an empty string unsets a variable for Parley.
export async function startParley({ dbFile, logDir, name = 'parley', env = {} }) {
  const port = await freePort();
  const srv = await startServer({ name, script: MAIN, env: { ...parleyEnv(dbFile), ...env }, port, logDir });
  srv.parley = true; // has /metrics (serverStages)
  return srv;
}

// Where a fan-out step's time went inside Parley, from its own histograms on /metrics (read before
// and after the step, every instance's buckets summed): a send's frame read to its ack written
// (the commit: hand-over, transaction, fsync, reply), and one commit's frames written to a
// channel's connections (the walk over the members' sockets). Percentiles are interpolated within
// the buckets (linear, as Prometheus' histogram_quantile does), so they are estimates.
const STAGES = { ack: 'parley_send_ack_seconds', walk: 'parley_fanout_write_seconds' };

export async function stageBuckets(servers) {
  const out = {};
  for (const srv of servers.filter((s) => s.parley)) {
    const text = await fetch(`${srv.url}/metrics`).then((r) => r.text(), () => null);
    if (text === null) continue;
    for (const [stage, name] of Object.entries(STAGES)) {
      const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm');
      const acc = (out[stage] ??= new Map());
      for (const [, le, n] of text.matchAll(re)) acc.set(le, (acc.get(le) ?? 0) + Number(n));
    }
  }
  return out;
}

// { ack: { n, p50, p99 }, walk: { ... } } in ms, between two stageBuckets() readings.
export function stagesBetween(before, after) {
  const res = {};
  for (const stage of Object.keys(STAGES)) {
    const a = after[stage];
    if (!a) continue;
    const rows = [...a].map(([le, n]) => [le === '+Inf' ? Infinity : Number(le), n - (before[stage]?.get(le) ?? 0)]).sort((x, y) => x[0] - y[0]);
    const total = rows.at(-1)?.[1] ?? 0;
    if (!total) continue;
    const q = (p) => {
      const want = p * total;
      let lo = 0, below = 0;
      for (const [le, cum] of rows) {
        if (cum >= want) return le === Infinity ? lo : lo + ((le - lo) * (want - below)) / Math.max(1, cum - below);
        lo = le; below = cum;
      }
      return lo;
    };
    res[stage] = { n: total, p50: Math.round(q(0.5) * 1e5) / 100, p99: Math.round(q(0.99) * 1e5) / 100 };
  }
  return res;
}

// Parley refuses a token that names no session (`sid`): each seeded user has one.
export const tokenFor = (u) => jwt.sign({ sub: u.id, username: u.username, sid: u.sid }, JWT_SECRET, { algorithm: 'HS256', expiresIn: '1h' });

// Users for every scenario; ids are uuids so they also work for the references.
export function makeUsers(prefix, n) {
  return Array.from({ length: n }, (_, i) => ({ id: randomUUID(), username: `${prefix}${i}`, sid: randomUUID() }));
}

// First start runs the migrations; then users go straight into `users`.
export async function seedParley({ dbFile, logDir, users }) {
  const srv = await startParley({ dbFile, logDir, name: 'parley-migrate' });
  await srv.stop();
  const hash = await argon2.hash('bench-password', { type: argon2.argon2id });
  const db = new Database(dbFile);
  try {
    const now = Date.now();
    const ins = db.prepare('INSERT INTO users (id, username, username_key, password_hash, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, NULL)');
    const session = db.prepare("INSERT INTO sessions (id, user_id, refresh_hash, created_at, last_used_at) VALUES (?, ?, 'bench', ?, ?)");
    db.transaction(() => {
      for (const u of users) {
        ins.run(u.id, u.username, u.username.toLowerCase(), hash, now);
        session.run(u.sid, u.id, now, now);
      }
    })();
  } finally { db.close(); }
}

// PostgreSQL for the scenarios that use it (cluster, scale, ingest's second row):
// BENCH_PG_URL, else DATABASE_URL when it is postgres://, else the local default;
// always in a schema of the harness's own (dropped and recreated).
const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/test';
export function pgBaseUrl() {
  const raw = process.env.BENCH_PG_URL || (/^postgres(ql)?:\/\//.test(process.env.DATABASE_URL || '') ? process.env.DATABASE_URL : DEFAULT_PG);
  const u = new URL(raw);
  u.searchParams.delete('schema');
  return u.toString();
}
export const redact = (url) => { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); };
// The DATABASE_URL that puts Parley in `schema`.
export const pgSchemaUrl = (url, schema) => `${url}${url.includes('?') ? '&' : '?'}schema=${schema}`;

// PostgreSQL: `url` without ?schema=, `schema` a name of the harness's own
// (dropped and recreated by resetPgSchema, so never point it at real data).
export async function withPg(url, schema, fn) {
  const c = new pg.Client({ connectionString: url, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  await c.connect();
  try { return await fn(c); } finally { await c.end(); }
}
export async function resetPgSchema(url, schema) {
  if (!/^bench_[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to drop schema ${schema}: not a bench_ schema`);
  await withPg(url, null, (c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}
// After a first start has run the migrations into `schema`.
export async function seedPgUsers(url, schema, users) {
  const hash = await argon2.hash('bench-password', { type: argon2.argon2id });
  const now = Date.now();
  await withPg(url, schema, async (c) => {
    for (let i = 0; i < users.length; i += 500) {
      const part = users.slice(i, i + 500);
      const vals = part.map((_, j) => `($${j * 3 + 1}, $${j * 3 + 2}, $${j * 3 + 3}, $${part.length * 3 + 1}, $${part.length * 3 + 2}, NULL)`);
      await c.query(`INSERT INTO users (id, username, username_key, password_hash, created_at, last_seen_at) VALUES ${vals.join(', ')}`,
        [...part.flatMap((u) => [u.id, u.username, u.username.toLowerCase()]), hash, now]);
      // A session each: Parley refuses a token that names none (sid).
      const sessions = part.map((_, j) => `($${j * 2 + 1}, $${j * 2 + 2}, 'bench', $${part.length * 2 + 1}, $${part.length * 2 + 1})`);
      await c.query(`INSERT INTO sessions (id, user_id, refresh_hash, created_at, last_used_at) VALUES ${sessions.join(', ')}`,
        [...part.flatMap((u) => [u.sid, u.id]), now]);
    }
  });
}

export async function api(srv, method, path, token, body) {
  const r = await fetch(srv.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  if (!r.ok) throw Object.assign(new Error(`${method} ${path}: HTTP ${r.status} ${text.slice(0, 300)}`), { status: r.status, body: json });
  return json;
}

// A public channel holding `members` (the first one creates it). The create
// request names the first 99 members; the rest join one by one, before anyone
// is connected (so no member.joined fan-out). Batching keeps the create
// request ordinary: a 999-name members list made Parley answer 500 (SQLite
// "Expression tree is too large") when this harness was written.
export async function createChannel(srv, name, members) {
  const [owner, ...rest] = members;
  const first = rest.slice(0, 99), others = rest.slice(99);
  const ch = await api(srv, 'POST', '/channels', tokenFor(owner), { name, visibility: 'public', members: first.map((u) => u.username) });
  const channelId = ch.id ?? ch.channelId ?? ch.channel?.id ?? ch.conversation?.channelId;
  if (!channelId) throw new Error(`POST /channels: no channel id in ${JSON.stringify(ch).slice(0, 200)}`);
  await pool(others, 16, (u) => api(srv, 'POST', `/channels/${channelId}/join`, tokenFor(u)));
  return channelId;
}

export function countRows(dbFile, sql) {
  const db = new Database(dbFile, { readonly: true });
  try { return db.prepare(sql).pluck().get(); } finally { db.close(); }
}

// What the several-instance scenarios (cluster, scale) need: a PostgreSQL schema URL and a Redis
// (BENCH_REDIS_URL, or a redis-server of the scenario's own). Resolves with { dbUrl, redis } or,
// when either is missing, { skipped: why }.
export async function clusterInfra(ctx, { schema, redisName }) {
  const pgUrl = pgBaseUrl();
  try { await withPg(pgUrl, null, (c) => c.query('SELECT 1')); }
  catch (e) { return { skipped: `PostgreSQL not reachable at ${redact(pgUrl)} (${e.message}); set BENCH_PG_URL` }; }
  const dbUrl = pgSchemaUrl(pgUrl, schema);
  if (process.env.BENCH_REDIS_URL) return { pgUrl, dbUrl, redis: { url: process.env.BENCH_REDIS_URL, cpuSec: () => 0, stop: async () => {} } };
  try { return { pgUrl, dbUrl, redis: await startRedis({ logDir: ctx.logDir, name: redisName }) }; }
  catch (e) { return { skipped: String(e.message) }; }
}
