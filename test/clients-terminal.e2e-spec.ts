import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register } from '../sdk/src/index.js';
import { eventually, sleep } from './helpers/cluster.js';
import { SdkProbe } from './helpers/sdk.js';
import { ServerProcess } from './helpers/server-process.js';
import { freshDatabaseUrl } from './helpers/test-app.js';

/**
 * The terminal client (`npm run chat`, built to dist/cli/chat.js) as a user runs it: a child
 * process, lines written to its stdin, lines read from its stdout. The other side of the
 * conversation is an SDK client. The server is killed (-9) and restarted mid-conversation.
 */
const CHAT = join(process.cwd(), 'dist', 'cli', 'chat.js');
const PASSWORD = 'password123';

class Terminal {
  readonly lines: string[] = [];
  private buffer = '';
  output = '';

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.output += d;
      this.buffer += d;
      const parts = this.buffer.split('\n');
      this.buffer = parts.pop()!;
      this.lines.push(...parts);
    });
    child.stderr!.on('data', (d: Buffer) => (this.output += d));
  }

  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Waits for a line matching `pattern` at or after line `from`; returns its index. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 20000): Promise<number> {
    let found = -1;
    try {
      await eventually(`a line matching ${pattern}`, () => (found = this.lines.findIndex((l, i) => i >= from && pattern.test(l))) >= 0, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the client's output:\n${this.output.slice(-2500)}`, { cause: err });
    }
    return found;
  }

  /** Types /quit; resolves with the exit code, or 'still running' after 10 s. */
  quit(): Promise<number | null | string> {
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', resolve));
    this.type('/quit');
    return Promise.race([exited, sleep(10000).then(() => 'still running')]);
  }

  count(pattern: RegExp): number {
    return this.lines.filter((l) => pattern.test(l)).length;
  }
}

describe('terminal client (npm run chat) as a child process', () => {
  const db = freshDatabaseUrl('sqlite');
  const env = { DATABASE_URL: db.url, RATE_LIMIT_PER_SEC: '0', HTTP_RATE_LIMIT: 'false', PASSWORD_HASH_MEMORY_KIB: '1024', HEARTBEAT_INTERVAL_MS: '2000', PRESENCE_GRACE_MS: '300' };
  let server: ServerProcess;
  let term: Terminal | undefined;
  let bob: SdkProbe | undefined;
  let erin: SdkProbe | undefined;
  // Where the terminal client keeps its unsent lines (not the home folder of whoever runs the tests).
  const stateDir = mkdtempSync(join(tmpdir(), 'parley-chat-state-'));
  const chat = (...args: string[]) => new Terminal(spawn(process.execPath, [CHAT, '--url', server.baseUrl, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PARLEY_STATE_DIR: stateDir } }));

  beforeAll(async () => {
    if (!existsSync(CHAT)) throw new Error('dist/cli/chat.js is missing: run `npm run build` (npm test does)');
    server = await ServerProcess.start(env);
  });
  afterAll(async () => {
    bob?.client.close();
    erin?.client.close(); // a failed test must not leave it reconnecting (Jest would not exit)
    term?.child.kill('SIGKILL');
    if (server?.alive) await server.kill('SIGKILL');
    await db.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  /** A user registered over HTTP and connected with the SDK: the other side of the terminal's conversations. */
  async function counterpart(username: string): Promise<{ auth: Awaited<ReturnType<typeof register>>; probe: SdkProbe }> {
    const auth = await register(server.baseUrl, { username, password: PASSWORD });
    const probe = await SdkProbe.create({ url: server.baseUrl, token: auth.accessToken });
    await probe.client.connect();
    return { auth, probe };
  }

  it('signs up, chats both ways, lists conversations, pages history, shows joins and presence, and survives a server restart', async () => {
    const suffix = Math.random().toString(36).slice(2, 7);
    const { auth: bobAuth, probe } = await counterpart(`bob_${suffix}`);
    bob = probe;

    const alice = `alice_${suffix}`;
    term = chat('--user', alice, '--register');
    term.type(PASSWORD); // not a terminal: the first line is the password
    await term.waitFor(new RegExp(`^\\* connected as ${alice}`));
    await term.waitFor(/no conversations yet/);

    // Lines typed at once are handled in order (the DM exists before the text is sent).
    term.type(`/dm ${bobAuth.user.username}`);
    term.type('hello bob');
    await eventually('bob to get it', () => [...bob!.messages.values()].flat().some((m) => m.text === 'hello bob'));
    const dm = [...bob.messages.keys()][0];
    await bob.client.send({ channelId: dm, text: 'hi alice' });
    await term.waitFor(new RegExp(`^\\[@${bobAuth.user.username}\\] ${bobAuth.user.username}: hi alice$`));
    await term.waitFor(new RegExp(`^\\* ${bobAuth.user.username} is online$`)).catch(() => undefined); // when shared in time

    // A channel: bob joins, alice sees it.
    const room = `room_${suffix}`;
    const before = term.lines.length;
    term.type(`/join ${room}`);
    await term.waitFor(new RegExp(`^\\* you are in #${room}`), before);
    const conv = bob.client.conversations.length;
    const joined = await bob.client.join({ name: room });
    expect(bob.client.conversations.length).toBe(conv + 1);
    await term.waitFor(new RegExp(`^\\* ${bobAuth.user.username} joined #${room}$`), before);
    for (let i = 1; i <= 5; i++) await bob.client.send({ channelId: joined.channelId, text: `r${i}` });
    await term.waitFor(new RegExp(`^\\[#${room}\\] ${bobAuth.user.username}: r5$`), before);

    // Unread counts in /list: the DM has one unread (alice is in the room now).
    await bob.client.send({ channelId: dm, text: 'unread one' });
    await term.waitFor(/unread one$/);
    await sleep(1000); // what alice saw in the room is marked read a moment later
    let at = term.lines.length;
    term.type('/list');
    await term.waitFor(new RegExp(`^\\*   @${bobAuth.user.username} \\((online|offline)\\) — 1 unread`), at);
    await term.waitFor(new RegExp(`^\\*   #${room}: `), at);

    // The server dies and comes back: alice's lines typed meanwhile still arrive, once.
    await server.kill('SIGKILL');
    await term.waitFor(/^\* connection lost/, at);
    term.type('sent while the server was away');
    server = await ServerProcess.start(env, server.port);
    await term.waitFor(/^\* reconnected$/, at, 30000);
    await eventually('bob to get the line typed during the outage', () => bob!.texts(joined.channelId).includes('sent while the server was away'), 30000);
    await bob.client.send({ channelId: joined.channelId, text: 'after restart' });
    await term.waitFor(new RegExp(`^\\[#${room}\\] ${bobAuth.user.username}: after restart$`), at, 30000);
    expect(term.count(new RegExp(`^\\[#${room}\\] ${bobAuth.user.username}: r5$`))).toBe(1); // nothing doubled by the resume
    expect(bob.texts(joined.channelId).filter((t) => t === 'sent while the server was away')).toHaveLength(1);

    // History: the room's earlier messages, paged back from the oldest shown.
    at = term.lines.length;
    term.type('/history 3');
    await term.waitFor(/^\* no earlier messages$|: r\d$/, at);

    // Errors are readable; bob leaves; /who; /quit exits 0.
    at = term.lines.length;
    term.type('/dm nobody_at_all_here');
    await term.waitFor(/^! not_found: /, at);
    term.type('/nonsense');
    await term.waitFor(/^! unknown command \/nonsense/, at);
    await bob.client.leave(joined.channelId);
    await term.waitFor(new RegExp(`^\\* ${bobAuth.user.username} left #${room}$`), at);
    term.type('/who');
    await term.waitFor(new RegExp(`^\\* ${bobAuth.user.username} is (online|offline)$`), at);
    expect(await term.quit()).toBe(0);
  }, 120000);

  it('keeps what was typed while the server was away across a /quit: the next start sends it, once', async () => {
    const suffix = Math.random().toString(36).slice(2, 7);
    erin = (await counterpart(`erin_${suffix}`)).probe;
    const room = `outbox_${suffix}`;
    const { channelId } = await erin.client.join({ name: room });
    const fay = `fay_${suffix}`;
    let t = (term = chat('--user', fay, '--register'));
    t.type(PASSWORD);
    await t.waitFor(new RegExp(`^\\* connected as ${fay}`));
    t.type(`/join ${room}`);
    await t.waitFor(new RegExp(`^\\* you are in #${room}`));

    await server.kill('SIGKILL');
    await t.waitFor(/^\* connection lost/);
    t.type('typed while the server was away');
    await eventually('the unsent line is in the outbox file', () => readdirSync(stateDir).some((f) => f.startsWith('outbox-')));
    expect(await t.quit()).toBe(0);

    server = await ServerProcess.start(env, server.port);
    await eventually('erin reconnected', () => erin!.client.state === 'ready', 30000);
    t = term = chat('--user', fay);
    t.type(PASSWORD);
    await t.waitFor(/^\* sending 1 message left unsent last time$/, 0, 30000);
    await eventually('erin gets the line', () => erin!.texts(channelId).includes('typed while the server was away'), 30000);
    await eventually('the outbox file is gone once the server stored it', () => !readdirSync(stateDir).some((f) => f.startsWith('outbox-')));
    expect(erin.texts(channelId).filter((x) => x === 'typed while the server was away')).toHaveLength(1);
    expect(await t.quit()).toBe(0);
  }, 120000);
});
