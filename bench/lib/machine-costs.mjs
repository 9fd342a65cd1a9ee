// What this machine charges for what Parley's write path does and an in-memory server does not:
// system calls, waking another thread (the hand-over to the SQLite writer thread and back), and a
// durable commit. Measured at the start of every run (about 7.5 s) and printed beside the
// machine's name, because the ratios against the references depend on them: on the 2-core VM of
// docs/benchmarks.md a system call cost about a microsecond and a thread wake-up tens of them, and
// the writer thread's kernel time was 30 % of Parley's CPU for a lone sender. Each figure is the
// median of three short measurements; CPU is the whole process's (all threads).
//
// - syscall: a zero-length `fs.writeSync` (one pwrite), Node's binding included (about 2.1 µs on
//   that VM, where a C `getppid` loop took 1.05 µs a call: Node's part is about 1 µs);
// - wake round trip: two threads passing a turn through `Atomics.wait`/`Atomics.notify` (futexes,
//   the kernel's part of any thread hand-over: libuv's eventfd behind `postMessage` costs about
//   the same), one round trip = two sleeps and two wake-ups;
// - postMessage round trip: a short string to a worker_threads Worker and back, as Parley's main
//   thread and its SQLite writer thread talk;
// - durable commit: what one small SQLite WAL commit does to the file (7 pages, each written as a
//   24-byte frame header and a 4,096-byte page, then one fsync), in the run's temporary folder.
// - the same two after 20 ms of idleness each (the postMessage round trip and the durable
//   commit): at ordinary load (the fan-out's 50 messages a second) every send finds both threads
//   asleep and the disk idle, and on the 2-core VM of docs/benchmarks.md both cost several times
//   their back-to-back figure (0.6.5). Wall time of the operation alone, the sleeps left out.
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { median, round2 } from './util.mjs';

const cpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };

/** Runs `fn(n)` three times; returns the medians of wall and CPU µs per iteration. */
async function measure(n, fn) {
  const wall = [], cpu = [];
  for (let r = 0; r < 3; r++) {
    const c0 = cpuUs(), t0 = performance.now();
    await fn(n);
    wall.push(((performance.now() - t0) * 1000) / n);
    cpu.push((cpuUs() - c0) / n);
  }
  return { wallUs: round2(median(wall)), cpuUs: round2(median(cpu)) };
}

function syscalls(dir) {
  const file = join(dir, 'machine-costs.empty');
  const fd = openSync(file, 'w');
  const none = Buffer.alloc(1);
  return {
    run: (k) => { for (let i = 0; i < k; i++) writeSync(fd, none, 0, 0, 0); },
    stop: () => { closeSync(fd); rmSync(file, { force: true }); },
  };
}

// The peer thread of the futex ping-pong: waits for its turn (1), hands it back (0).
const FUTEX_PEER = `
const { workerData } = require('node:worker_threads');
const turn = new Int32Array(workerData);
for (;;) {
  Atomics.wait(turn, 0, 0);
  if (Atomics.load(turn, 1) === 1) break;
  Atomics.store(turn, 0, 0);
  Atomics.notify(turn, 0);
}`;

async function futexRoundTrips() {
  const sab = new SharedArrayBuffer(8);
  const turn = new Int32Array(sab);
  const w = new Worker(FUTEX_PEER, { eval: true, workerData: sab });
  await new Promise((r) => setTimeout(r, 50)); // the peer is waiting
  return {
    run: (k) => {
      for (let i = 0; i < k; i++) {
        Atomics.store(turn, 0, 1);
        Atomics.notify(turn, 0);
        Atomics.wait(turn, 0, 1);
      }
    },
    stop: async () => { Atomics.store(turn, 1, 1); Atomics.store(turn, 0, 1); Atomics.notify(turn, 0); await w.terminate(); },
  };
}

async function postMessageRoundTrips() {
  const w = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`, { eval: true });
  const one = () => new Promise((resolve) => { w.once('message', resolve); w.postMessage('{"type":"batch","id":1}'); });
  await one();
  return {
    run: async (k) => { for (let i = 0; i < k; i++) await one(); },
    stop: () => w.terminate(),
  };
}

function durableCommits(dir) {
  const file = join(dir, 'machine-costs.wal');
  const fd = openSync(file, 'w+');
  const header = Buffer.alloc(24, 1), page = Buffer.alloc(4096, 2);
  writeSync(fd, Buffer.alloc(1 << 20), 0, 1 << 20, 0); // preallocated, as a WAL file that is reused
  fsyncSync(fd);
  let off = 0;
  return {
    run: (k) => {
      for (let i = 0; i < k; i++) {
        for (let p = 0; p < 7; p++) {
          writeSync(fd, header, 0, 24, off);
          writeSync(fd, page, 0, 4096, off + 24);
          off += 4120;
        }
        if (off > 900_000) off = 0;
        fsyncSync(fd);
      }
    },
    stop: () => { closeSync(fd); rmSync(file, { force: true }); },
  };
}

const IDLE_MS = 20;

/**
 * `op` `n` times, each after IDLE_MS of sleep, three times; the medians of the per-round means of
 * the operation's own wall and CPU µs (the sleeps are not counted).
 */
async function measureAfterIdle(n, op) {
  const wall = [], cpu = [];
  for (let r = 0; r < 3; r++) {
    let w = 0, c = 0;
    for (let i = 0; i < n; i++) {
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      const c0 = cpuUs(), t0 = performance.now();
      await op();
      w += (performance.now() - t0) * 1000;
      c += cpuUs() - c0;
    }
    wall.push(w / n);
    cpu.push(c / n);
  }
  return { wallUs: round2(median(wall)), cpuUs: round2(median(cpu)) };
}

/** The figures, for summary.machine, or `{ error }` when a measurement failed (the run goes on). */
export async function machineCosts(dir) {
  try {
    const out = {};
    // afterIdle: the same operation also measured once at a time after idleness (about 2.4 s).
    for (const [name, n, open, afterIdle] of [
      ['syscall', 200_000, () => syscalls(dir), false],
      ['wakeRoundTrip', 5_000, futexRoundTrips, false],
      ['postMessageRoundTrip', 2_000, postMessageRoundTrips, true],
      ['durableCommit', 300, () => durableCommits(dir), true],
    ]) {
      const probe = await open();
      try {
        out[name] = await measure(n, probe.run);
        if (afterIdle) out[`${name}AfterIdle`] = await measureAfterIdle(40, () => probe.run(1));
      } finally {
        await probe.stop();
      }
    }
    return out;
  } catch (e) {
    return { error: e.message };
  }
}

export function describeCosts(c) {
  if (!c || c.error) return `machine costs: not measured (${c?.error ?? 'skipped'})`;
  const f = (x) => `${x.wallUs} µs (CPU ${x.cpuUs} µs)`;
  return `machine costs (medians of 3): syscall ${f(c.syscall)}; thread wake round trip ${f(c.wakeRoundTrip)}; ` +
    `postMessage round trip ${f(c.postMessageRoundTrip)}; durable commit of 7 pages ${f(c.durableCommit)}` +
    (c.durableCommitAfterIdle ? `; after ${IDLE_MS} ms idle: postMessage round trip ${f(c.postMessageRoundTripAfterIdle)}, durable commit ${f(c.durableCommitAfterIdle)}` : '');
}
