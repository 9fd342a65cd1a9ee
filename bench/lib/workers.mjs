// Parent side of the load generators: forks them, talks to them over IPC and
// merges their reports.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, track } from './servers.mjs';
import { Hist } from './util.mjs';

export class Worker {
  constructor(name) {
    this.name = name;
    this.child = track(fork(join(BENCH_DIR, 'lib/loadgen.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.pid = this.child.pid;
    this.seq = 0;
    this.pending = new Map();
    this.child.on('message', (m) => { this.pending.get(m.id)?.(m); this.pending.delete(m.id); });
    this.child.on('exit', (code) => {
      for (const [, cb] of this.pending) cb({ ok: false, error: `load generator ${name} exited (${code})` });
      this.pending.clear();
    });
  }
  call(cmd, args = {}, timeoutMs = 300_000) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(id); reject(new Error(`${this.name}: ${cmd} timed out`)); }, timeoutMs);
      this.pending.set(id, (m) => { clearTimeout(t); if (m.ok) resolve(m); else reject(new Error(`${this.name}: ${m.error}`)); });
      this.child.send({ ...args, cmd, id });
    });
  }
  async kill() {
    try { await this.call('close', {}, 5000); } catch { /* ignore */ }
    this.child.kill('SIGKILL');
  }
}

export class Group {
  constructor(n, prefix = 'lg') { this.ws = Array.from({ length: n }, (_, i) => new Worker(`${prefix}${i}`)); }
  all(cmd, args) { return Promise.all(this.ws.map((w) => w.call(cmd, args))); }
  // Split `tokens` evenly over the workers and connect.
  // metas[j] (optional) travels with tokens[j], e.g. {target: {to: 'bob'}}.
  async connect(tokens, opts, metas) {
    const split = (xs) => this.ws.map((_, i) => xs.filter((_, j) => j % this.ws.length === i));
    const parts = split(tokens), mparts = metas ? split(metas) : [];
    const rs = await Promise.all(this.ws.map((w, i) => w.call('connect', { ...opts, tokens: parts[i], metas: mparts[i] })));
    return { connected: sum(rs, 'connected'), failed: sum(rs, 'failed'), errors: rs.flatMap((r) => r.errors), channelId: rs.find((r) => r.channelId)?.channelId, ms: Math.max(...rs.map((r) => r.ms)) };
  }
  async snap(reset = true) { return mergeSnaps(await this.all('snap', { reset })); }
  kill() { return Promise.all(this.ws.map((w) => w.kill())); }
}

const sum = (rs, k) => rs.reduce((a, r) => a + (r[k] || 0), 0);

export function mergeSnaps(rs) {
  const lat = new Hist(), ackLat = new Hist();
  const other = {}, closed = {};
  for (const r of rs) {
    lat.merge(r.lat); ackLat.merge(r.ackLat);
    for (const [k, v] of Object.entries(r.other)) other[k] = (other[k] || 0) + v;
    for (const [k, v] of Object.entries(r.closed)) closed[k] = (closed[k] || 0) + v;
  }
  return {
    deliveries: sum(rs, 'deliveries'), acks: sum(rs, 'acks'), errors: sum(rs, 'errors'),
    errorSamples: rs.flatMap((r) => r.errorSamples).slice(0, 5), other, closed, open: sum(rs, 'open'),
    lat, ackLat,
    clientCpuCores: rs.map((r) => Math.round(r.cpuCores * 100) / 100),
    clientEldP99Ms: Math.max(...rs.map((r) => r.eld.p99)),
  };
}
