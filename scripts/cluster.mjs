#!/usr/bin/env node
// Several Parley instances behind one address, on one machine, with nothing to install:
//
//   DATABASE_URL=postgres://user@host:5432/db REDIS_URL=redis://127.0.0.1:6379 \
//     node scripts/cluster.mjs [--instances 3] [--port 3000] [--host 0.0.0.0]
//
// starts N instances of dist/main.js on ports port+1 .. port+N, all on the same PostgreSQL
// database and Redis, and a small round-robin proxy on `port` that forwards HTTP requests and
// WebSocket upgrades to them (no sticky sessions: any instance serves any client). An instance
// that refuses connections (dead, restarting) is skipped. Each instance's log lines are prefixed
// with its name. Ctrl-C (or SIGTERM) stops the proxy and sends each instance one SIGTERM, which
// Parley answers by closing its sockets with 1001 and exiting; a second Ctrl-C kills them.
//
// This is a tool for trying a cluster on a laptop, not a production load balancer: see
// deploy/haproxy.cfg and deploy/nginx.conf, and docs/deployment.md.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist/main.js');
const USAGE = `usage: DATABASE_URL=postgres://... REDIS_URL=redis://... node scripts/cluster.mjs [--instances 3] [--port 3000] [--host ADDR]

  --instances N   how many Parley instances (default 3), on ports port+1 .. port+N
  --port P        the proxy's port (default 3000): point clients here
  --host ADDR     the proxy's listen address (default: all interfaces, like Parley)

Every other setting reaches the instances from this environment (JWT_SECRET, LOG_LEVEL, ...).
Without JWT_SECRET, one secret is generated once into data/jwt-secret and shared by all.
Without TRUST_PROXY, the instances get TRUST_PROXY=loopback (the proxy's X-Forwarded-For).`;

// ---------------------------------------------------------------- arguments and environment
function parseArgs(argv) {
  const o = { instances: 3, port: 3000, host: undefined };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split(/=(.*)/s);
    const val = () => inline ?? argv[++i];
    if (k === '--help' || k === '-h') { console.log(USAGE); process.exit(0); }
    else if (k === '--instances' || k === '-n') o.instances = Number(val());
    else if (k === '--port' || k === '-p') o.port = Number(val());
    else if (k === '--host') o.host = val();
    else fail(`unknown argument ${argv[i]}\n\n${USAGE}`);
  }
  if (!Number.isInteger(o.instances) || o.instances < 1 || o.instances > 64) fail('--instances must be an integer from 1 to 64');
  if (!Number.isInteger(o.port) || o.port < 1 || o.port + o.instances > 65535) fail(`--port must leave room for ${o.instances} instance ports after it (port+1 .. port+${o.instances} <= 65535)`);
  return o;
}

function fail(msg) {
  console.error(`cluster: ${msg}`);
  process.exit(2);
}

function checkEnvironment() {
  const db = process.env.DATABASE_URL;
  if (!db || !/^postgres(ql)?:\/\//.test(db)) {
    fail(`DATABASE_URL must be a postgres:// URL (it is ${db ? `"${db.split(':')[0]}:..."` : 'unset'}).
  Several instances share one PostgreSQL database; SQLite is the one-instance default.
  e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley?schema=parley`);
  }
  if (!process.env.REDIS_URL || !/^rediss?:\/\//.test(process.env.REDIS_URL)) {
    fail(`REDIS_URL must be a redis:// URL (it is ${process.env.REDIS_URL ? 'not' : 'unset'}).
  Instances deliver each other's messages and presence through Redis; without it a message sent
  on one instance would not reach clients connected to another.
  e.g. REDIS_URL=redis://127.0.0.1:6379`);
  }
  if (!existsSync(MAIN)) fail(`${MAIN} is missing: run \`npm run build\` first`);
}

// Parley generates a missing JWT_SECRET into <data folder>/jwt-secret on first start. Three
// instances starting at once would each generate a different one (and then reject each other's
// tokens), so the launcher makes that file once, the way Parley does, before any instance starts.
function sharedSecretFile() {
  const dir = join(ROOT, 'data');
  const file = join(dir, 'jwt-secret');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, randomBytes(48).toString('base64url') + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    return { file, created: true };
  }
  if (!readFileSync(file, 'utf8').trim()) fail(`${file} is empty: delete it or set JWT_SECRET`);
  return { file, created: false };
}

// ---------------------------------------------------------------- logging
const COLORS = [36, 35, 33, 32, 34, 91, 96, 95];
const tty = process.stdout.isTTY;
const tag = (name, i) => (tty ? `\x1b[${COLORS[i % COLORS.length]}m[${name}]\x1b[0m` : `[${name}]`);
const PROXY_TAG = tty ? '\x1b[1m[proxy]\x1b[0m' : '[proxy]';
const say = (msg) => console.log(`${PROXY_TAG} ${msg}`);

// ---------------------------------------------------------------- instances
// The preload (an inline module) makes an instance shut down cleanly if the launcher itself
// dies without stopping it (kill -9 of the launcher): its IPC channel closes, and it SIGTERMs
// itself. Instances run in their own process groups, so a Ctrl-C in the terminal reaches the
// launcher only, and each instance gets exactly one SIGTERM from it.
const ORPHAN_GUARD = 'data:text/javascript,process.on("disconnect",()=>process.kill(process.pid,"SIGTERM"))';

class Instance {
  constructor(index, port) {
    this.index = index;
    this.name = `p${index + 1}`;
    this.port = port;
    this.child = null;
    this.exited = null;
    this.downUntil = 0; // the proxy skips it until then, after a refused connection
  }

  start(env) {
    this.child = spawn(process.execPath, ['--import', ORPHAN_GUARD, MAIN], {
      cwd: ROOT,
      env: { ...process.env, ...env, PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    this.exited = null;
    const t = tag(this.name, this.index);
    for (const stream of [this.child.stdout, this.child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => console.log(`${t} ${line}`));
    }
    this.child.on('error', (e) => console.log(`${t} could not start: ${e.message}`));
    this.child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      console.log(`${t} exited (${signal ? `signal ${signal}` : `code ${code}`})`);
      onInstanceExit(this);
    });
    console.log(`${t} pid ${this.child.pid}, http://127.0.0.1:${this.port}`);
  }

  signal(sig) {
    if (this.exited || !this.child?.pid) return;
    try { process.kill(this.child.pid, sig); } catch { /* already gone */ }
  }

  async ready(timeoutMs) {
    const end = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < end && !this.exited) {
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/health/ready`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return true;
        last = `HTTP ${r.status} ${(await r.text()).slice(0, 200)}`;
      } catch (e) { last = e.cause?.code ?? e.message; }
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(`${tag(this.name, this.index)} not ready after ${timeoutMs / 1000} s (${this.exited ? 'exited' : last})`);
    return false;
  }
}

// ---------------------------------------------------------------- proxy
// Round-robin over the instances, one TCP connection per request or WebSocket. The instance is
// chosen when that connection is established: a refusal (instance down or restarting) moves on to
// the next one before any byte of the request is sent, so nothing is ever sent twice.
const SKIP_AFTER_REFUSAL_MS = 1000;
const CONNECT_TIMEOUT_MS = 3000;
let rr = 0;

function connectUpstream(instances) {
  return new Promise((resolve, reject) => {
    const n = instances.length;
    const start = rr++ % n;
    const now = Date.now();
    // Instances that recently refused go last, but are still tried: they may be back.
    const order = Array.from({ length: n }, (_, k) => instances[(start + k) % n]);
    order.sort((a, b) => (a.downUntil > now) - (b.downUntil > now));
    let k = 0;
    const attempt = () => {
      if (k >= order.length) return reject(new Error('no instance accepted the connection'));
      const inst = order[k++];
      const sock = net.connect({ host: '127.0.0.1', port: inst.port });
      const timer = setTimeout(() => sock.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        sock.on('error', () => {}); // the request or the tunnel reports errors from here on
        inst.downUntil = 0;
        resolve({ sock, inst });
      });
      sock.once('error', () => {
        clearTimeout(timer);
        inst.downUntil = Date.now() + SKIP_AFTER_REFUSAL_MS;
        attempt();
      });
    };
    attempt();
  });
}

// Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

function forwardedHeaders(req) {
  const out = [];
  const hop = new Set(HOP);
  for (const c of String(req.headers.connection || '').split(',')) if (c.trim()) hop.add(c.trim().toLowerCase());
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i].toLowerCase();
    if (hop.has(k) || k === 'x-forwarded-for' || k === 'x-forwarded-proto' || k === 'x-forwarded-host') continue;
    out.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const xff = req.headers['x-forwarded-for'];
  out.push('X-Forwarded-For', (xff ? `${xff}, ` : '') + (req.socket.remoteAddress ?? ''));
  out.push('X-Forwarded-Proto', 'http');
  if (req.headers.host) out.push('X-Forwarded-Host', req.headers.host);
  return out;
}

const live = new Set(); // open client sockets of WebSocket tunnels

function createProxy(instances) {
  const server = http.createServer(async (req, res) => {
    let up;
    try { up = await connectUpstream(instances); }
    catch (e) { return refuse(res, e); }
    const headers = forwardedHeaders(req);
    const upReq = http.request({
      method: req.method, path: req.url, headers, setHost: false,
      // No agent: the request goes over the socket already connected to the chosen instance.
      createConnection: () => up.sock,
    });
    upReq.on('response', (upRes) => {
      const out = [];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        if (!HOP.has(upRes.rawHeaders[i].toLowerCase())) out.push(upRes.rawHeaders[i], upRes.rawHeaders[i + 1]);
      }
      res.writeHead(upRes.statusCode, upRes.statusMessage, out);
      upRes.pipe(res);
    });
    upReq.on('error', (e) => {
      if (!res.headersSent) refuse(res, e, up.inst);
      else res.destroy();
    });
    res.on('close', () => { if (!res.writableFinished) upReq.destroy(); });
    req.pipe(upReq);
  });

  // WebSocket: the request line and headers go to the chosen instance as they came (plus the
  // X-Forwarded-* headers), then the two sockets are spliced together. The instance's answer
  // (101, or 401/403) travels back unchanged; so do pings, pongs and close frames.
  server.on('upgrade', async (req, client, head) => {
    client.on('error', () => {});
    let up;
    try { up = await connectUpstream(instances); }
    catch {
      client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n' +
        JSON.stringify({ statusCode: 502, code: 'unavailable', message: 'no Parley instance accepted the connection' }));
      return;
    }
    const { sock } = up;
    const h = forwardedHeaders(req);
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < h.length; i += 2) lines.push(`${h[i]}: ${h[i + 1]}`);
    lines.push('Connection: Upgrade', `Upgrade: ${req.headers.upgrade}`);
    sock.write(lines.join('\r\n') + '\r\n\r\n');
    if (head?.length) sock.write(head);
    sock.setNoDelay(true);
    client.setNoDelay(true);
    sock.pipe(client).pipe(sock);
    live.add(client);
    const done = () => { live.delete(client); client.destroy(); sock.destroy(); };
    sock.on('error', done).on('close', done);
    client.on('close', done);
  });

  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });
  return server;
}

function refuse(res, err, inst) {
  if (res.headersSent) return res.destroy();
  res.writeHead(502, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ statusCode: 502, code: 'unavailable', message: inst ? `instance ${inst.name} failed: ${err.message}` : 'no Parley instance accepted the connection' }));
}

// ---------------------------------------------------------------- main
const opts = parseArgs(process.argv.slice(2));
checkEnvironment();
const env = {};
// The instances see every client through the proxy, which connects from 127.0.0.1 and sets
// X-Forwarded-For: trust it, so per-IP rate limits count clients, not the proxy.
if (!process.env.TRUST_PROXY) env.TRUST_PROXY = 'loopback';
if (!process.env.JWT_SECRET) {
  const s = sharedSecretFile();
  say(`JWT_SECRET is not set: every instance uses ${s.file}${s.created ? ' (created now)' : ''}`);
}
const instances = Array.from({ length: opts.instances }, (_, i) => new Instance(i, opts.port + 1 + i));
let stopping = false;

function onInstanceExit() {
  if (!stopping && instances.every((i) => i.exited)) {
    say('every instance has exited: stopping');
    stop(1);
  }
}

const proxy = createProxy(instances);
proxy.on('error', (e) => {
  say(`cannot listen on ${opts.host ?? '*'}:${opts.port}: ${e.message}`);
  stop(1);
});

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  proxy.close();
  say('stopping: SIGTERM to every instance (their clients get close 1001 and may reconnect elsewhere)');
  for (const i of instances) i.signal('SIGTERM');
  const end = Date.now() + 12_000; // Parley exits within 10 s of SIGTERM
  while (Date.now() < end && instances.some((i) => i.child && !i.exited)) await new Promise((r) => setTimeout(r, 100));
  for (const i of instances) if (i.child && !i.exited) { say(`${i.name} still running after 12 s: SIGKILL`); i.signal('SIGKILL'); }
  for (const c of live) c.destroy();
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (!stopping) return stop(0);
    say('second signal: SIGKILL to every instance');
    for (const i of instances) i.signal('SIGKILL');
    process.exit(130);
  });
}
// Whatever happens to the launcher, its instances do not outlive it.
process.on('exit', () => { for (const i of instances) i.signal('SIGKILL'); });

say(`starting ${opts.instances} instance(s) on ports ${opts.port + 1}..${opts.port + opts.instances} (DATABASE_URL ${redact(process.env.DATABASE_URL)}, REDIS_URL ${redact(process.env.REDIS_URL)})`);
for (const i of instances) i.start(env);
proxy.listen(opts.port, opts.host, () => say(`listening on http://${opts.host ?? 'localhost'}:${opts.port} (WebSocket ws://${opts.host ?? 'localhost'}:${opts.port}/ws), round-robin over ${opts.instances} instance(s)`));
const ready = await Promise.all(instances.map((i) => i.ready(60_000)));
if (!stopping) say(`${ready.filter(Boolean).length}/${instances.length} instance(s) ready; Ctrl-C stops them all`);

function redact(url) {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return '(unparsable)'; }
}
