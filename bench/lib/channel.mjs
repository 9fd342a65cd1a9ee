// One channel, one sender, N receivers: the set-up the fanout, window and scale
// scenarios share. The sender's connection lives in a load-generator process of
// its own (its schedule, or its acks, are not queued behind receive work); the
// other members are split over the receiver processes.
import { Group } from './workers.mjs';
import { createChannel, tokenFor } from './parley.mjs';
import { sleep, waitFor } from './util.mjs';

// kind: 'parley' (the channel is made through `srv`'s HTTP API, unless `channelId` names
// one made already) or a reference server (every connection joins `name` over the socket).
// base/framing: where the sender connects (and the receivers, unless `recvTargets`).
// recvTargets: one {base, framing} per receiver process; the receivers are cut into that many
// contiguous parts, part i on target i (the scale scenario: half on instance A, half on B).
// Without it, two receiver processes on the sender's target, the receivers dealt out in turn.
// names: the load-generator processes' name prefixes [sender, receivers] (in error messages).
// Resolves with { sender, recv, all, channelId, connected, connectMs, close }; on a failure
// the processes are killed before the error goes on.
export async function openChannel(ctx, { kind, srv, base, framing, users, name, channelId, recvTargets, names = ['snd', 'rcv'] }) {
  const tokens = users.map(tokenFor);
  const sender = new Group(1, names[0]);
  const recv = new Group(recvTargets?.length ?? 2, names[1]);
  const all = [sender, recv];
  const close = () => Promise.all(all.map((g) => g.kill()));
  try {
    let joinName;
    if (kind === 'parley') channelId ??= await createChannel(srv, name, users);
    else joinName = name;
    const opts = { base, framing, joinName, concurrency: 50 };
    const s = await sender.connect(tokens.slice(0, 1), opts);
    const r = recvTargets ? await connectParts(recv, tokens.slice(1), recvTargets.map((t) => ({ ...opts, ...t }))) : await recv.connect(tokens.slice(1), opts);
    channelId ??= s.channelId;
    const connected = s.connected + r.connected;
    if (!s.connected || r.failed) throw new Error(`connect: ${connected}/${users.length} (${[...s.errors, ...r.errors].join('; ')})`);
    await sleep(ctx.quick ? 300 : 1000); // let join/presence traffic settle
    return { sender, recv, all, channelId, connected, connectMs: s.ms + r.ms, close };
  } catch (e) {
    await close();
    throw e;
  }
}

// Receiver process i gets the i-th contiguous part of `tokens`, connected with opts[i].
async function connectParts(group, tokens, opts) {
  const n = group.ws.length, size = Math.ceil(tokens.length / n);
  const rs = await Promise.all(group.ws.map((w, i) => w.call('connect', { ...opts[i], tokens: tokens.slice(i * size, (i + 1) * size) })));
  const sum = (k) => rs.reduce((a, x) => a + (x[k] || 0), 0);
  return { connected: sum('connected'), failed: sum('failed'), errors: rs.flatMap((x) => x.errors), channelId: rs.find((x) => x.channelId)?.channelId, ms: Math.max(...rs.map((x) => x.ms)) };
}

// Waits (10 s at most) until the deliveries the groups count reach `expected` or stop growing for
// `stableSteps` polls, so that a backlog is charged to the step that made it, not to the next.
export async function drainDeliveries(groups, { expected = Infinity, stableSteps, everyMs }) {
  let last = -1, stable = 0;
  const peek = async () => (await Promise.all(groups.map((g) => g.all('snap', { reset: false })))).flat().reduce((a, x) => a + x.deliveries, 0);
  await waitFor(async () => {
    const d = await peek();
    stable = d === last ? stable + 1 : 0;
    last = d;
    return d >= expected || stable >= stableSteps;
  }, { timeoutMs: 10_000, everyMs, what: 'drain' }).catch(() => {});
}
