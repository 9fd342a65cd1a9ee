// autocannon in its own process (forked by the history scenario), so the
// harness's own event loop never shares time with the load.
import autocannon from 'autocannon';

process.once('message', async (opts) => {
  const r = await autocannon({ ...opts, title: undefined });
  process.send({
    reqPerSec: r.requests.average, total: r.requests.total, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.average },
    bytesPerSec: r.throughput.average,
  });
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
