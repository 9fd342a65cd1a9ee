import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, freePort, ServerProcess } from './server-process.js';
import { freshDatabaseUrl } from './test-app.js';
import { Frame, TestClient } from './ws-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Distinct free ports (freePort alone may hand out the same one twice when called at once). */
async function freePorts(n: number, taken: Set<number> = new Set()): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!taken.has(p) && !out.includes(p)) out.push(p);
  }
  return out;
}

/** Answers true when something on `port` replies +PONG to a Redis PING. */
function redisAnswers(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/**
 * A throwaway redis-server of the test's own, on a free port, with no persistence, so a test can
 * kill it (SIGKILL: no goodbye to the clients) and bring it back, empty, on the same port. The
 * machine's shared Redis (6379) is never touched.
 */
export class RedisServer {
  private child: ChildProcess | null = null;
  private exit: Promise<unknown> = Promise.resolve();
  private readonly dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  output = '';

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(port?: number): Promise<RedisServer> {
    const redis = new RedisServer(port ?? (await freePort()));
    await redis.spawn();
    return redis;
  }

  private async spawn(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (d) => (this.output += d));
    child.stderr?.on('data', (d) => (this.output += d));
    this.exit = new Promise((resolve) => child.once('exit', resolve));
    const failed = new Promise<Error>((resolve) => child.once('error', resolve));
    const deadline = Date.now() + 10000;
    for (;;) {
      const spawnError = await Promise.race([failed, sleep(50).then(() => null)]);
      if (spawnError) throw new Error(`redis-server could not be started (is it installed?): ${spawnError.message}`);
      if (child.exitCode !== null) throw new Error(`redis-server exited at start (port ${this.port}):\n${this.output}`);
      if (await redisAnswers(this.port)) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer on port ${this.port}:\n${this.output}`);
      }
    }
  }

  /**
   * One command, e.g. `command('CLIENT', 'KILL', 'TYPE', 'pubsub')`; answers the reply's first
   * line (`+OK`, `:3`, `-ERR ...`).
   */
  command(...args: string[]): Promise<string> {
    const resp = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    return new Promise((resolve, reject) => {
      const sock = tcpConnect(this.port, '127.0.0.1');
      sock.setTimeout(2000, () => {
        sock.destroy();
        reject(new Error(`redis ${args[0]}: no answer`));
      });
      sock.once('error', reject);
      sock.once('connect', () => sock.write(resp));
      sock.once('data', (d) => {
        sock.destroy();
        resolve(d.toString().split('\r\n')[0]);
      });
    });
  }

  /** SIGKILL: the server vanishes mid-conversation, as in a crash. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exit;
  }

  /** A new, empty redis-server on the same port (the instances' REDIS_URL stays right). */
  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A user goes offline this long after their last connection closes (short, for tests). */
export const PRESENCE_GRACE_MS = 300;
/** A killed instance's users go offline for everyone else within this. */
export const PRESENCE_TTL_MS = 3000;

/** The environment every instance of a test cluster shares (the brief of the cluster tests). */
export function clusterEnv(databaseUrl: string, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    JWT_SECRET: 'cluster-test-secret-0123456789abcdef',
    PASSWORD_HASH_MEMORY_KIB: '1024',
    RATE_LIMIT_PER_SEC: '0',
    PRESENCE_GRACE_MS: String(PRESENCE_GRACE_MS),
    PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
    BUS_HEAD_CHECK_MS: '500',
    BUS_GAP_WAIT_MS: '50',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export interface ClusterUser {
  id: string;
  username: string;
  token: string;
}

export interface StoredMessage {
  id: string;
  channelId: string;
  seq: number;
  clientMsgId: string;
  text: string;
  sender: { id: string; username: string };
}

let nameCounter = 0;
const uniqueName = (prefix: string) => `${prefix}${++nameCounter}_${Math.random().toString(36).slice(2, 7)}`;

/**
 * N instances of the built server (`node dist/main.js`) on one fresh PostgreSQL schema and one
 * Redis of their own, started at the same moment (as in a rollout: the schema is empty, so the
 * migrations must be serialized between them). Tracks the WebSocket clients a test opens so that
 * `stop()` leaves nothing behind, and puts every instance's output into failure messages.
 */
export class Cluster {
  private readonly clients: TestClient[] = [];
  private stopped = false;

  private constructor(
    readonly nodes: ServerProcess[],
    readonly redis: RedisServer,
    readonly env: Record<string, string>,
    readonly schema: string,
    private readonly dropSchema: () => Promise<void>,
  ) {}

  static async start(instances = 3, extraEnv: Record<string, string> = {}): Promise<Cluster> {
    const db = freshDatabaseUrl('postgres');
    const schema = new URL(db.url).searchParams.get('schema')!;
    const redis = await RedisServer.start();
    const env = clusterEnv(db.url, redis.url, extraEnv);
    const ports = await freePorts(instances, new Set([redis.port]));
    const started = await Promise.allSettled(ports.map((port) => ServerProcess.start(env, port, 60000)));
    const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const cluster = new Cluster(nodes, redis, env, schema, db.cleanup);
    const failures = started.flatMap((s, i) => (s.status === 'rejected' ? [`instance ${Cluster.label(i)}: ${String(s.reason?.message ?? s.reason)}`] : []));
    if (failures.length > 0) {
      const others = cluster.logs();
      await cluster.stop();
      throw new Error(`the cluster did not start (${failures.length} of ${instances} instances failed at once on an empty schema):\n${failures.join('\n')}\n${others}`);
    }
    try {
      await Promise.all(nodes.map((n) => cluster.waitReady(n, 30000)));
    } catch (err) {
      const logs = cluster.logs();
      await cluster.stop();
      throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
    }
    return cluster;
  }

  static label(i: number): string {
    return String.fromCharCode(65 + i);
  }

  labelOf(node: ServerProcess): string {
    return Cluster.label(this.nodes.indexOf(node));
  }

  /** An instance that is still running, for set-up calls (register, create a channel, read back). */
  get live(): ServerProcess {
    const node = this.nodes.find((n) => n.alive);
    if (!node) throw new Error('no instance of the cluster is running');
    return node;
  }

  /** Polls `/health/ready` until it answers 200. */
  async waitReady(node: ServerProcess, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      try {
        const res = await api(node.baseUrl, 'GET', '/health/ready');
        if (res.status === 200) return;
        last = `${res.status} ${JSON.stringify(res.body)}`;
      } catch (err) {
        last = String((err as Error).message);
      }
      if (Date.now() > deadline) throw new Error(`instance ${this.labelOf(node)} not ready within ${timeoutMs} ms (last answer: ${last})`);
      await sleep(100);
    }
  }

  async register(prefix = 'user'): Promise<ClusterUser> {
    const username = uniqueName(prefix);
    const res = await api(this.live.baseUrl, 'POST', '/auth/register', { username, password: 'password123' });
    if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    return { id: res.body.user.id, username, token: res.body.accessToken };
  }

  async users(n: number, prefix = 'user'): Promise<ClusterUser[]> {
    return Promise.all(Array.from({ length: n }, () => this.register(prefix)));
  }

  /** A public channel created by `owner` with `members` added; returns its id. */
  async channel(owner: ClusterUser, members: ClusterUser[] = []): Promise<string> {
    const res = await api(this.live.baseUrl, 'POST', '/channels', { name: uniqueName('room-'), visibility: 'public', members: members.map((m) => m.username) }, owner.token);
    if (res.status !== 201) throw new Error(`create channel: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id;
  }

  /**
   * A DM both users have posted in (accepted on both sides), so presence flows through it;
   * returns its channel id.
   */
  async acceptedDm(a: ClusterUser, b: ClusterUser): Promise<string> {
    const dm = await api(this.live.baseUrl, 'POST', '/dms', { username: b.username }, a.token);
    if (dm.status !== 200 && dm.status !== 201) throw new Error(`create DM: ${dm.status} ${JSON.stringify(dm.body)}`);
    const channelId = dm.body.channelId as string;
    for (const [from, text] of [[a, 'hello'], [b, 'hi']] as const) {
      const res = await api(this.live.baseUrl, 'POST', `/channels/${channelId}/messages`, { text, clientMsgId: uniqueName('dm-') }, from.token);
      if (res.status !== 201) throw new Error(`send in DM: ${res.status} ${JSON.stringify(res.body)}`);
    }
    return channelId;
  }

  /** A WebSocket connection of `user` to `node`, open and past `session.ready`. */
  async connect(user: ClusterUser, node: ServerProcess): Promise<TestClient> {
    return (await this.connectWithReady(user, node)).client;
  }

  async connectWithReady(user: ClusterUser, node: ServerProcess): Promise<{ client: TestClient; ready: Frame['data'] }> {
    const opened = await TestClient.connect(node.wsUrl, user.token);
    this.clients.push(opened.client);
    return opened;
  }

  /** Every stored message of a channel, ascending, read over HTTP (paged). */
  async history(user: ClusterUser, channelId: string, node: ServerProcess = this.live): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (let after = 0; ; ) {
      const page = await api(node.baseUrl, 'GET', `/channels/${channelId}/messages?after=${after}&limit=200`, undefined, user.token);
      if (page.status !== 200) throw new Error(`history: ${page.status} ${JSON.stringify(page.body)}`);
      out.push(...page.body.messages);
      if (!page.body.hasMore || page.body.messages.length === 0) return out;
      after = out.at(-1)!.seq;
    }
  }

  /** The sum of every sample of a Prometheus metric on one instance (0 when absent). */
  async metric(node: ServerProcess, name: string): Promise<number> {
    return (await this.metrics(node)).get(name) ?? 0;
  }

  /** Each metric name (samples of all labels summed) of one instance's `/metrics`. */
  async metrics(node: ServerProcess): Promise<Map<string, number>> {
    const res = await fetch(`${node.baseUrl}/metrics`);
    if (!res.ok) throw new Error(`/metrics on ${this.labelOf(node)}: ${res.status}`);
    const out = new Map<string, number>();
    for (const line of (await res.text()).split('\n')) {
      // A metric declared but not yet observed (labelled, no samples) still counts as present.
      const declared = /^# TYPE (\S+) (\S+)/.exec(line);
      if (declared) {
        const names = declared[2] === 'histogram' ? ['_count', '_sum', '_bucket'].map((s) => declared[1] + s) : [declared[1]];
        for (const name of names) if (!out.has(name)) out.set(name, 0);
        continue;
      }
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[3]));
    }
    return out;
  }

  /** A query on the cluster's database (outside its schema: qualify tables with `this.schema`). */
  async sql<T = Record<string, unknown>>(text: string): Promise<T[]> {
    const { default: pg } = await import('pg');
    const u = new URL(process.env.DATABASE_URL!);
    u.searchParams.delete('schema');
    const client = new pg.Client({ connectionString: u.toString() });
    await client.connect();
    try {
      return (await client.query(text)).rows as T[];
    } finally {
      await client.end();
    }
  }

  /** Closes (politely) every connection opened so far, as a user closing a tab would. */
  async closeClients(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
  }

  /** Every instance's output (the tail of it), labelled, for failure messages. */
  logs(maxChars = 4000): string {
    const parts = this.nodes.map((n, i) => {
      const state = n.alive ? 'running' : `exited (code ${n.child.exitCode}, signal ${n.child.signalCode})`;
      const out = n.output.length > maxChars ? `…${n.output.slice(-maxChars)}` : n.output;
      return `--- instance ${Cluster.label(i)} (port ${n.port}, ${state}) ---\n${out.trim() || '(no output)'}`;
    });
    const redisState = this.redis.running ? 'running' : 'stopped';
    const redisLog = this.redis.output.split('Ready to accept connections').at(-1)!.trim(); // past the start-up banner
    parts.push(`--- redis (port ${this.redis.port}, ${redisState}) ---\n${redisLog.slice(-1000) || '(nothing since it started)'}`);
    return parts.join('\n');
  }

  /** Runs a test body; when it fails, the error carries every instance's output. */
  async explain<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      if (err instanceof Error) err.message += `\n\nCluster output:\n${this.logs()}`; // Jest prints the message
      throw err;
    }
  }

  /** Closes the clients, kills every instance (SIGKILL) and Redis, drops the schema. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const c of this.clients.splice(0)) c.ws.terminate();
    await Promise.all(this.nodes.filter((n) => n.alive).map((n) => n.kill('SIGKILL')));
    await this.redis.cleanup();
    await this.dropSchema().catch(() => undefined);
  }
}

/** Waits until `check` holds (polled), or fails naming `what`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The `message.new` frames a connection received for one channel, in arrival order. */
export function received(client: TestClient, channelId: string): StoredMessage[] {
  return client.log.filter((f) => f.event === 'message.new' && f.data.message.channelId === channelId).map((f) => f.data.message as StoredMessage);
}

/** 1, 2, ..., n. */
export const seqs = (n: number, from = 1): number[] => Array.from({ length: n - from + 1 }, (_, i) => from + i);

/**
 * Resume, as the protocol says a client does: `sync` from `lastSeq`, repeated while `hasMore`;
 * returns the messages, ascending.
 */
export async function syncFrom(client: TestClient, channelId: string, lastSeq: number, timeoutMs = 10000): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for (let n = 0; ; n++) {
    const ref = `sync-${n}`;
    client.send('sync', { channels: { [channelId]: lastSeq }, ref });
    const page = await client.next('sync.result', (d) => d.channelId === channelId && d.ref === ref, timeoutMs);
    out.push(...page.messages);
    if (!page.hasMore || page.messages.length === 0) return out;
    lastSeq = out.at(-1)!.seq;
  }
}

export { sleep };
