// Preloaded into every server under test (`node --import bench/lib/probe.mjs`),
// Parley included, so all servers are measured the same way without touching
// their code. It answers the harness over the fork() IPC channel with
// memory, CPU and event-loop delay; it adds no timers of its own besides the
// event-loop delay monitor (a libuv timer, sampled in C++).
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (process.send) {
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  process.on('message', (m) => {
    if (!m || m.probe !== 'stats') return;
    // Two full GCs so heapUsed counts live objects only (needs --expose-gc).
    if (m.gc && globalThis.gc) { globalThis.gc(); globalThis.gc(); }
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    // The histogram holds whole sampling intervals (10 ms + delay): report the delay.
    const ms = (ns) => Math.max(0, Math.round((ns / 1e6 - 10) * 100) / 100);
    process.send({
      probe: 'stats', id: m.id,
      rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external,
      cpuUs: cpu.user + cpu.system,
      eld: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max), mean: ms(eld.mean) },
    });
    if (m.reset) eld.reset();
  });
  // The harness died without cleaning up: do not linger as an orphan.
  process.on('disconnect', () => process.exit(0));
}
