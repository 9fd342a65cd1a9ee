// Scenario: scale. Does a second instance raise the fan-out maximum? The
// fan-out ladder (lib/ladder.mjs: same rungs, repeats and pass rule as the
// fanout scenario) for two set-ups on one PostgreSQL schema and a Redis of the
// harness's own, each with a channel of 1,000 members of its own, one member
// sending 100-byte messages open-loop:
//   one: instance S alone, with REDIS_URL (a one-instance cluster, the
//        deployment a second instance is added to; a REDIS_PREFIX of its own):
//        the sender and all 999 receivers on S;
//   two: instances A and B (another prefix): the sender and half of the
//        receivers on A, the other half on B (one receiver process per instance).
// All connections stay open, and the set-ups take turns within every rung
// (one, two, then two, one, ...), as in the cluster scenario, so load from
// elsewhere on the machine falls on both alike. Reported: both maxima and their
// ratio, each instance's CPU, Redis and PostgreSQL CPU, and the client's CPU.
// Everything shares one machine (2 cores here): the client, Redis and
// PostgreSQL take cores the instances would have on their own boxes, so a
// ratio near 1 on this machine mostly says the cores are all in use (see the
// client-bound and other-load flags), not what a bigger machine would show.
import { startParley, makeUsers, resetPgSchema, seedPgUsers, redact, clusterInfra } from '../lib/parley.mjs';
import { openChannel } from '../lib/channel.mjs';
import { runLadders, ladderRows, P99_GOAL_MS } from '../lib/ladder.mjs';
import { postgresCpu, postgresCpuSince, ratio } from '../lib/util.mjs';

const SCHEMA = 'bench_scale';

export async function run(ctx) {
  if (!ctx.parley) return { skipped: 'Parley not available' };
  const infra = await clusterInfra(ctx, { schema: SCHEMA, redisName: 'scale-redis' });
  if (infra.skipped) return { skipped: infra.skipped };
  const { pgUrl, dbUrl, redis } = infra;
  const usersOne = ctx.users.fan, usersTwo = makeUsers('scl', usersOne.length);
  const n = usersOne.length;
  const out = {
    members: n, messageBytes: 100, p99GoalMs: P99_GOAL_MS, database: redact(dbUrl),
    redis: process.env.BENCH_REDIS_URL ? 'BENCH_REDIS_URL' : 'own redis-server', setups: {},
  };
  const servers = [];
  const chs = [];
  // CPU of Redis and of every postgres process (per pid: a backend that ends in the window
  // does not count negative), reported beside the instances'.
  const extraCpu = {
    redis: () => { const c0 = redis.cpuSec(); return () => redis.cpuSec() - c0; },
    db: () => { const m0 = postgresCpu(); return () => postgresCpuSince(m0); },
  };
  try {
    await resetPgSchema(pgUrl, SCHEMA);
    const env = (prefix) => ({ DATABASE_URL: dbUrl, REDIS_URL: redis.url, REDIS_PREFIX: prefix });
    const S = await startParley({ logDir: ctx.logDir, name: 'scale-s', env: env('bench-scale-one') }); // runs the migrations
    servers.push(S);
    await seedPgUsers(pgUrl, SCHEMA, [...usersOne, ...usersTwo]);
    const [A, B] = await Promise.all(['a', 'b'].map((x) => startParley({ logDir: ctx.logDir, name: `scale-${x}`, env: env('bench-scale-two') })));
    servers.push(A, B);
    ctx.log(`scale: schema ${SCHEMA}, instance S alone and instances A, B (Redis, prefixes of their own), a channel of ${n} members each`);
    const at = (srv) => ({ base: `ws://127.0.0.1:${srv.port}`, framing: 'json' });
    // Two receiver processes either way (the same client as one instance's); with two
    // instances, the first process's receivers are on A and the second's on B.
    const open = async (name, srv, users, recvOn) => {
      const ch = await openChannel(ctx, { kind: 'parley', srv, ...at(srv), users, name: `bench-scale-${name}`, recvTargets: recvOn.map(at), names: [`${name}snd`, `${name}rcv`] });
      chs.push(ch);
      return ch;
    };
    const chOne = await open('one', S, usersOne, [S, S]);
    const chTwo = await open('two', A, usersTwo, [A, B]);
    const half = Math.ceil((n - 1) / 2);
    const [one, two] = await runLadders(ctx, [
      { label: 'one', servers: [S], ch: chOne, members: n, extraCpu },
      { label: 'two', servers: [A, B], ch: chTwo, members: n, extraCpu },
    ]);
    out.setups.one = { instances: 1, connected: chOne.connected, connectMs: chOne.connectMs, receiversPerInstance: [n - 1], ...one };
    out.setups.two = { instances: 2, connected: chTwo.connected, connectMs: chTwo.connectMs, receiversPerInstance: [half, n - 1 - half], ...two };
  } finally {
    await Promise.all(chs.map((ch) => ch.close()));
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
    if (!ctx.keep) await resetPgSchema(pgUrl, SCHEMA).catch(() => {});
  }
  const one = out.setups.one, two = out.setups.two;
  out.maxRatio = one?.maxRate && two ? ratio(two.maxRate, one.maxRate) : null;
  return out;
}

export function report(r, { table }) {
  if (r.skipped) return { text: table(`Scale (skipped: ${r.skipped})`, []), ratios: {} };
  const label = { one: 'one instance (S)', two: 'two instances (A+B)' };
  const rows = Object.entries(r.setups).map(([k, v]) => {
    // Figures at the maximum (the highest passing rung), else at the first rung.
    const m = v.ladder.find((x) => x.target === v.maxRate) ?? v.ladder[0] ?? {};
    return {
      setup: label[k], 'receivers/instance': v.receiversPerInstance.join('+'),
      'max deliv/s (p99<=50ms)': v.maxRate, note: v.maxRateNote, 'at deliv/s': m.target, 'p99 ms': m.p99,
      'srv cores/instance': (m.serverCpuCoresEach ?? [m.serverCpuCores]).join('+'), 'srv us/deliv': m.serverCpuUsPerDelivery,
      'redis cores': m.extraCores?.redis, 'db cores': m.extraCores?.db, 'client cores': m.clientCpu?.join('+'),
      flags: [m.clientBound && 'client-bound', m.noisy && 'other load'].filter(Boolean).join(', '),
    };
  });
  const reps = Object.values(r.setups).find((v) => v.repeats)?.repeats;
  let text = table(`Scale: fan-out maximum of one Parley instance against two (PostgreSQL + Redis), ${r.members} members, ${r.messageBytes}-byte messages, ` +
    `one sender on S or A (medians of ${reps ?? '?'} runs, set-ups in turn; every process shares this machine)`, rows);
  if (r.maxRatio != null) {
    const lb = Object.values(r.setups).some((v) => v.limitedBy !== 'server');
    text += `  two/one instance maximum: ${r.maxRatio}x${lb ? ' (at least one maximum is a lower bound: see note)' : ''}\n`;
  }
  text += table(`Scale ladder: median of the repeats per rung, pass = median p99 <= ${r.p99GoalMs} ms and no loss (srv cores: sum (A+B))`,
    Object.entries(r.setups).flatMap(([k, v]) => ladderRows(label[k], v)));
  const ratios = {};
  if (r.maxRatio != null) ratios['Scale: two/one instance max rate'] = r.maxRatio;
  return { text, ratios };
}
