// Load-generator process (forked by lib/workers.mjs). Holds a share of the
// client connections, counts deliveries and records latency from the *intended*
// send time, sends open-loop (fixed schedule, never waiting for replies, so no
// coordinated omission) or with a fixed window of unacknowledged messages
// (ingest), and reports its own CPU and event-loop delay so the parent can
// tell when the client, not the server, is the bottleneck.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connect, benchText, markedTime } from './client.mjs';
import { Hist, nowUs, sleep, pool } from './util.mjs';

const conns = [];
// clientMsgId is Parley's idempotency key: it must never repeat within a run,
// or the server rightly answers with the original message and no fan-out.
let msgSeq = 0;
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();

let st; // counters for the current measurement window
function resetStats() {
  st = {
    t0: nowUs(), cpu0: process.cpuUsage(),
    deliveries: 0, lat: new Hist(), // message.new frames carrying a bench mark
    acks: 0, ackLat: new Hist(), // message.ack frames on this worker's senders
    errors: 0, errorSamples: [], other: {}, // other frames, by event name
  };
  eld.reset();
}
resetStats();

// The hot path: one call per received frame.
function onFrame(conn, event, buf) {
  if (event === 'message.new') {
    const t = markedTime(buf);
    if (t > 0) { st.deliveries++; st.lat.record(nowUs() - t); }
  } else if (event === 'message.ack') {
    st.acks++;
    conn.inflight--;
    const t = markedTime(buf);
    if (t > 0) st.ackLat.record(nowUs() - t);
    conn.onAck?.();
  } else if (event === 'error') {
    st.errors++;
    conn.inflight--;
    if (st.errorSamples.length < 5) st.errorSamples.push(String(buf).slice(0, 300));
    conn.onAck?.();
  } else {
    st.other[event] = (st.other[event] || 0) + 1;
  }
}

function snapshot() {
  const cpu = process.cpuUsage(st.cpu0);
  const wallUs = nowUs() - st.t0;
  const closed = {};
  for (const c of conns) if (c.closeCode !== null) closed[c.closeCode] = (closed[c.closeCode] || 0) + 1;
  return {
    wallUs, cpuUs: cpu.user + cpu.system, cpuCores: (cpu.user + cpu.system) / wallUs,
    // the histogram holds whole 10 ms sampling intervals: keep the delay beyond them
    eld: { p50: Math.max(0, eld.percentile(50) / 1e6 - 10), p99: Math.max(0, eld.percentile(99) / 1e6 - 10), max: Math.max(0, eld.max / 1e6 - 10) },
    deliveries: st.deliveries, lat: st.lat.toJSON(), acks: st.acks, ackLat: st.ackLat.toJSON(),
    errors: st.errors, errorSamples: st.errorSamples, other: st.other, open: conns.length - Object.values(closed).reduce((a, b) => a + b, 0), closed,
    rss: process.memoryUsage().rss,
  };
}

async function cmdConnect({ base, framing, tokens, metas, localAddresses = ['127.0.0.1'], joinName, concurrency = 100 }) {
  const t0 = Date.now();
  const errors = [];
  let channelId, ok = 0;
  await pool(tokens, concurrency, async (token, i) => {
    // Retry a few times: a burst of handshakes can overflow the listen backlog.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const c = await connect({ base, framing, token, localAddress: localAddresses[i % localAddresses.length], onFrame });
        c.inflight = 0;
        c.meta = metas?.[i];
        if (joinName) {
          const joined = c.next('channel.joined');
          c.send('channel.join', { name: joinName });
          channelId = (await joined).conversation.channelId;
        }
        conns.push(c);
        ok++;
        return;
      } catch (e) {
        if (attempt === 2) { if (errors.length < 5) errors.push(String(e.message)); }
        else await sleep(200);
      }
    }
  });
  return { connected: ok, failed: tokens.length - ok, errors, channelId, ms: Date.now() - t0 };
}

// Open loop: message k is due at t0 + k/rate; its intended time goes into the
// text, so a late send (client hiccup) still counts against latency.
async function cmdSend({ channelId, to, rate, durationMs, size = 100, connIndex = 0, tag = 's' }) {
  const c = conns[connIndex];
  const n = Math.max(1, Math.round((rate * durationMs) / 1000));
  const step = 1e6 / rate;
  const t0 = nowUs() + 2000;
  let i = 0, maxLateUs = 0;
  const end = Date.now() + durationMs + 30_000; // bound, whatever happens
  while (i < n && Date.now() < end) {
    const now = nowUs();
    while (i < n && t0 + i * step <= now) {
      const t = Math.round(t0 + i * step);
      c.send('message.send', { ...(to ? { to } : { channelId }), text: benchText(t, i, size), clientMsgId: `${tag}-${process.pid}-${msgSeq++}` });
      if (now - t > maxLateUs) maxLateUs = now - t;
      i++;
    }
    if (i < n) await sleep(Math.max(0, (t0 + i * step - nowUs()) / 1000 - 0.2));
  }
  return { sent: i, maxLateMs: maxLateUs / 1000 };
}

// Closed loop with a window: every connection keeps `window` messages
// unacknowledged until the deadline, then waits (bounded) for the last acks.
async function cmdWindow({ targets, window = 8, durationMs, size = 100, tag = 'w', invalid = false }) {
  let sent = 0;
  const t0 = Date.now();
  const deadline = Date.now() + durationMs;
  const done = [];
  conns.forEach((c, ci) => {
    const target = c.meta?.target ?? targets[ci % targets.length]; // {to} or {channelId}
    let n = 0;
    const fire = () => {
      while (c.inflight < window && Date.now() < deadline && c.closeCode === null) {
        c.inflight++;
        sent++;
        // invalid: a number where text must be a string, to time the rejection path
        c.send('message.send', { ...target, text: invalid ? n : benchText(nowUs(), n, size), clientMsgId: `${tag}-${process.pid}-${msgSeq++}` });
        n++;
      }
    };
    c.onAck = fire;
    done.push(c);
    fire();
  });
  await sleep(durationMs);
  const end = Date.now() + 15_000;
  while (Date.now() < end && done.some((c) => c.inflight > 0 && c.closeCode === null)) await sleep(20);
  for (const c of done) c.onAck = null;
  return { sent, unacked: done.reduce((a, c) => a + Math.max(0, c.inflight), 0), elapsedMs: Date.now() - t0 };
}

const handlers = {
  connect: cmdConnect,
  send: cmdSend,
  window: cmdWindow,
  reset: async () => { resetStats(); return {}; },
  snap: async ({ reset }) => { const s = snapshot(); if (reset) resetStats(); return s; },
  close: async () => { for (const c of conns) c.close(); conns.length = 0; return {}; },
};

process.on('message', async (m) => {
  try {
    const r = await handlers[m.cmd](m);
    process.send({ id: m.id, ok: true, ...r });
  } catch (e) {
    process.send({ id: m.id, ok: false, error: String(e?.stack || e) });
  }
});
process.on('disconnect', () => process.exit(0));
