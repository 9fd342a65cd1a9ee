// Spawns servers under test with the probe preloaded, waits until they answer,
// and guarantees they die with the harness (normal exit, error or signal).
import { fork, spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { procCpuSec, procRssBytes, waitFor, sleep } from './util.mjs';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
export const ROOT_DIR = join(BENCH_DIR, '..');
const PROBE = pathToFileURL(join(BENCH_DIR, 'lib/probe.mjs')).href;

// Every child process we start (servers and load generators) is tracked here.
export const children = new Set();
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
function killAll() {
  for (const c of children) try { c.kill('SIGKILL'); } catch { /* already gone */ }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { killAll(); process.exit(130); });

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

export class Server {
  constructor(name, child, port, logFile) {
    Object.assign(this, { name, child, port, logFile, pid: child.pid });
    this.url = `http://127.0.0.1:${port}`;
    this.exited = null;
    this.seq = 0;
    this.pending = new Map();
    child.on('exit', (code, sig) => { this.exited = { code, sig }; });
    child.on('message', (m) => {
      if (m?.probe !== 'stats') return;
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
  }
  // Memory, CPU (µs, all threads) and event-loop delay, via the preloaded probe.
  // reset: restart the event-loop delay histogram (so it covers the next window).
  stats({ gc = false, reset = false } = {}) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(id); reject(new Error(`${this.name}: probe timeout`)); }, 30_000);
      this.pending.set(id, (m) => { clearTimeout(t); resolve(m); });
      this.child.send({ probe: 'stats', id, gc, reset });
    });
  }
  cpuSec() { return procCpuSec(this.pid); }
  rss() { return procRssBytes(this.pid); }
  async stop() {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    for (let i = 0; i < 100 && !this.exited; i++) await sleep(50);
    if (!this.exited) this.child.kill('SIGKILL');
    for (let i = 0; i < 40 && !this.exited; i++) await sleep(50);
  }
}

// Start `script` (a path) as a server listening on `port`. healthPath must answer 200.
export async function startServer({ name, script, args = [], env = {}, port, healthPath = '/health', logDir, cwd = ROOT_DIR, timeoutMs = 60_000 }) {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = track(fork(script, args, {
    cwd,
    env: { ...process.env, ...env, PORT: String(port) },
    // BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the servers under load.
    execArgv: ['--expose-gc', '--import', PROBE, ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
    stdio: ['ignore', fd, fd, 'ipc'],
  }));
  closeSync(fd);
  const srv = new Server(name, child, port, logFile);
  try {
    await waitFor(async () => {
      if (srv.exited) throw new Error(`${name} exited during start-up (${JSON.stringify(srv.exited)}); see ${logFile}`);
      try {
        const r = await fetch(`${srv.url}${healthPath}`);
        return r.ok;
      } catch { return false; }
    }, { timeoutMs, everyMs: 100, what: `${name} health` });
  } catch (e) {
    await srv.stop();
    throw e;
  }
  return srv;
}

// A Redis of the harness's own (no persistence), on a free port, killed with the
// harness. Resolves with { url, stop() }; throws when redis-server is missing.
export async function startRedis({ logDir, name = 'redis' }) {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) throw new Error('redis-server is not installed (or set BENCH_REDIS_URL)');
  const port = await freePort();
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  let exited = null;
  child.on('exit', (code, sig) => { exited = { code, sig }; });
  const ping = () => new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
    s.on('error', () => resolve(false));
  });
  await waitFor(async () => {
    if (exited) throw new Error(`${name} exited during start-up (${JSON.stringify(exited)}); see ${logFile}`);
    return ping();
  }, { timeoutMs: 10_000, everyMs: 100, what: `${name} PING` });
  return {
    url: `redis://127.0.0.1:${port}`, pid: child.pid, logFile,
    cpuSec: () => procCpuSec(child.pid),
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      for (let i = 0; i < 40 && !exited; i++) await sleep(50);
      if (!exited) child.kill('SIGKILL');
    },
  };
}
