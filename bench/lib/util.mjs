// Small helpers shared by the harness: clock, histogram, /proc readers, tables.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Warm-up under the measured load before a per-message CPU figure (inbound, ingest): V8's
 * optimizing compiler runs on background threads of the server process, whose CPU the figure
 * counts, for several seconds after a load starts (seen on a 2-core machine: those threads at
 * 0.2 cores for about 8 s, then at nothing). A one-second warm-up left that one-time cost inside
 * the measured window, where it is neither the cost of a message nor the same from run to run.
 */
export const JIT_WARM_MS = 8000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One clock for every process: process.hrtime is CLOCK_MONOTONIC, shared by all
// processes on the machine, so a sender and a receiver in different processes
// can subtract their readings. Microseconds, as a Number (fits easily).
export const nowUs = () => Number(process.hrtime.bigint() / 1000n);

// Poll `fn` until it returns truthy or `timeoutMs` passes (bounded, like every loop here).
export async function waitFor(fn, { timeoutMs = 10_000, everyMs = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// Log-bucketed latency histogram (2% wide buckets, 1 µs .. ~10 min). Recording is
// one Math.log and an array increment: cheap enough to record every delivery at
// hundreds of thousands per second, and histograms from several processes merge
// by adding arrays.
const K = 1 / Math.log(1.02);
const NB = 1100;
export class Hist {
  constructor(src) {
    this.b = src ? Float64Array.from(src.b) : new Float64Array(NB);
    this.n = src?.n ?? 0;
    this.sum = src?.sum ?? 0;
    this.max = src?.max ?? 0;
  }
  record(us) {
    if (us < 0) us = 0;
    const i = Math.min(NB - 1, Math.floor(Math.log(us + 1) * K));
    this.b[i]++;
    this.n++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }
  merge(o) {
    for (let i = 0; i < NB; i++) this.b[i] += o.b[i];
    this.n += o.n;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
    return this;
  }
  // Value (µs) at quantile q: the middle of the bucket holding it, capped by max.
  q(q) {
    if (!this.n) return NaN;
    const want = q * this.n;
    let c = 0;
    for (let i = 0; i < NB; i++) {
      c += this.b[i];
      if (c >= want) return Math.min(this.max, Math.exp((i + 0.5) / K) - 1);
    }
    return this.max;
  }
  toJSON() {
    return { b: Array.from(this.b), n: this.n, sum: this.sum, max: this.max };
  }
  summaryMs() {
    const r = (x) => Math.round(x / 10) / 100;
    return { n: this.n, p50: r(this.q(0.5)), p90: r(this.q(0.9)), p99: r(this.q(0.99)), max: r(this.max), mean: r(this.n ? this.sum / this.n : NaN) };
  }
}

// CPU seconds (user+system, all threads) of a process, from /proc/<pid>/stat.
// Resolution is one clock tick (10 ms), so measure windows of seconds.
const CLK_TCK = 100;
export function procCpuSec(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

export function procRssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export function machineInfo() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpu)?.[1] ?? 'unknown';
  const nproc = (cpu.match(/^processor\s*:/gm) || []).length;
  return { nproc, cpuModel: model, node: process.version, platform: `${process.platform} ${process.arch}` };
}

// Plain fixed-width table for the terminal.
export function table(title, rows) {
  if (!rows.length) return `${title}\n  (no rows)\n`;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v) => (v === undefined || v === null ? '' : typeof v === 'number' ? fmtNum(v) : String(v));
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals) => '  ' + vals.map((v, i) => v.padStart(w[i])).join('  ');
  return [`\n${title}`, line(cols), line(w.map((n) => '-'.repeat(n))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n') + '\n';
}

export function fmtNum(v) {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return (Math.round(v * 10) / 10).toString();
  return (Math.round(v * 100) / 100).toString();
}

export const round2 = (v) => Math.round(v * 100) / 100;
// Median of the finite values (null when none), to two decimals when it falls between two.
export const median = (xs) => { const a = xs.filter(Number.isFinite).sort((p, q) => p - q); if (!a.length) return null; const h = a.length >> 1; return a.length % 2 ? a[h] : Math.round(((a[h - 1] + a[h]) / 2) * 100) / 100; };

export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? Math.round((a / b) * 100) / 100 : null);

// Run async `fn` over `items` with at most `n` in flight.
export async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

// Machine-wide CPU from /proc/stat, in ticks: `busy` (user, nice, system, irq,
// softirq) and `steal` (time the hypervisor gave to other guests). Used to
// spot load that is neither the server nor the load generator (the machine is
// shared with whatever else runs on it: builds, tests).
export function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return { busy: user + nice + system + irq + softirq, steal: steal || 0, t: nowUs() };
}
export function machineCoresSince(m0) {
  const m1 = machineCpu();
  const s = (m1.t - m0.t) / 1e6;
  return { busyCores: (m1.busy - m0.busy) / CLK_TCK / s, stealCores: (m1.steal - m0.steal) / CLK_TCK / s };
}

// Wait (bounded) until the machine is nearly idle for one second, i.e. until
// other work (a build, a test run) has stopped. Returns the last busy reading.
export async function waitQuiet({ maxMs = 20_000, busyCores = 0.25 } = {}) {
  const end = Date.now() + maxMs;
  let r;
  do {
    const m0 = machineCpu();
    await sleep(1000);
    r = machineCoresSince(m0);
  } while (r.busyCores + r.stealCores > busyCores && Date.now() < end);
  return Math.round((r.busyCores + r.stealCores) * 100) / 100;
}

// CPU of every PostgreSQL process on the machine (the server may be shared
// with other work: its CPU is reported, not charged to "other load"), per pid,
// so that backends ending during the window do not count negative.
export function postgresCpu() {
  const m = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try { if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) m.set(pid, procCpuSec(pid)); } catch { /* gone */ }
  }
  return m;
}
export function postgresCpuSince(before) {
  let s = 0;
  for (const [pid, cpu] of postgresCpu()) s += cpu - (before.get(pid) ?? 0);
  return s;
}

// Runs `runOne(kind)` for each server of the run (ctx.kinds), one after the other, into
// `out.servers[kind]`: a server that fails gets { error } and the others still run.
export async function eachServer(ctx, scenario, out, runOne) {
  for (const kind of ctx.kinds) {
    ctx.log(`${scenario}: ${kind}`);
    try { out.servers[kind] = await runOne(kind); }
    catch (e) { serverFailed(ctx, scenario, out, kind, e); }
  }
  return out;
}

// A server's figures in `out` become its error, logged with its stack.
export function serverFailed(ctx, scenario, out, kind, e) {
  out.servers[kind] = { error: String(e.message || e) };
  ctx.log(`${scenario} ${kind} failed: ${e.stack || e}`);
}
