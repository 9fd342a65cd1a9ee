import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { ParleyClient, ParleyError, StateChange, WebSocketLike } from '../sdk/src/index.js';
import type { FetchLike } from '../sdk/src/index.js';

/**
 * The SDK's reconnect policy, close code by close code, against a scripted WebSocket and fetch
 * (no server: what is checked is which wait and which token the client picks). The real server
 * is in test/clients.e2e-spec.ts.
 */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: { event: string; data: Record<string, unknown> }[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.frame('session.ready', { user: { id: 'u1', username: 'alice' }, sessionId: 's', heartbeatIntervalMs: 30000, conversations: [] });
    }, 1);
  }

  frame(event: string, data: unknown): void {
    this.onmessage?.({ data: JSON.stringify({ event, data }) });
  }

  send(raw: string): void {
    this.sent.push(JSON.parse(raw));
  }

  close(): void {
    this.readyState = 3;
  }

  /** The server closes the connection. */
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const tokens: { force: boolean }[] = [];
const ticketFetch: FetchLike = async (_url, init) => {
  const auth = init?.headers?.authorization ?? '';
  const ok = !auth.includes('refused');
  return { status: ok ? 201 : 401, ok, headers: { get: () => null }, text: async () => JSON.stringify(ok ? { ticket: 't', expiresIn: 30 } : { statusCode: 401, code: 'unauthorized', message: 'no' }) };
};

function client(getToken: (ctx: { force: boolean }) => string = (ctx) => (tokens.push(ctx), 'token')) {
  const states: StateChange[] = [];
  const c = new ParleyClient({
    url: 'http://parley.test',
    getToken,
    WebSocket: FakeSocket,
    fetch: ticketFetch,
    backoff: { baseMs: 1000, maxMs: 8000 },
  });
  c.on('state', (s) => states.push(s));
  return { c, states };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

describe('SDK reconnect policy (scripted socket)', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    tokens.length = 0;
  });

  it('derives the WebSocket URL and authenticates with a ticket', async () => {
    const { c } = client();
    await c.connect();
    expect(FakeSocket.all[0].url).toBe('ws://parley.test/ws?ticket=t');
    c.close();
  });

  it.each([1001, 1012])('%i: reconnects at once, no wait', async (code) => {
    const { c, states } = client();
    await c.connect();
    FakeSocket.all[0].serverClose(code);
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', delayMs: 0, closeCode: code });
    await until(() => c.state === 'ready' && FakeSocket.all.length === 2);
    c.close();
  });

  it('1008 (token expired): asks getToken for a fresh token, then reconnects at once', async () => {
    const { c, states } = client();
    await c.connect();
    expect(tokens).toEqual([{ force: false }]);
    FakeSocket.all[0].serverClose(1008, 'token expired');
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', delayMs: 0, closeCode: 1008 });
    await until(() => c.state === 'ready' && FakeSocket.all.length === 2);
    expect(tokens).toEqual([{ force: false }, { force: true }]);
    c.close();
  });

  it('1008 and the fresh token is refused too: stops, closed with unauthorized', async () => {
    let n = 0;
    const { c, states } = client(() => (n++ === 0 ? 'token' : 'refused'));
    await c.connect();
    const pending = c.send({ channelId: '00000000-0000-4000-8000-000000000000', text: 'x' });
    FakeSocket.all[0].serverClose(1008, 'session ended');
    await expect(pending).rejects.toMatchObject({ code: 'unauthorized' });
    expect(states.at(-1)).toMatchObject({ state: 'closed', error: { code: 'unauthorized' } });
  });

  it('1008 and getToken itself is refused (a dead refresh token): stops instead of asking again and again', async () => {
    let calls = 0;
    const { c, states } = client(() => {
      if (calls++ === 0) return 'token';
      throw new ParleyError('unauthorized', 'refresh token refused');
    });
    await c.connect();
    FakeSocket.all[0].serverClose(1008, 'token expired');
    await until(() => c.state === 'closed');
    expect(calls).toBe(2);
    expect(states.at(-1)).toMatchObject({ state: 'closed', error: { code: 'unauthorized' } });
  });

  it('4008 (slow consumer), 1006 and 1008 for abuse back off with full jitter (uniform from 0 to the cap)', async () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      const { c, states } = client();
      await c.connect();
      FakeSocket.all[0].serverClose(4008, 'slow consumer');
      // attempt 0: up to 1000 ms (random ~1 → the top of the range)
      expect(states.at(-1)).toMatchObject({ state: 'reconnecting', closeCode: 4008, delayMs: 999 });
      c.close();
      const second = client();
      await second.c.connect();
      FakeSocket.all[1].serverClose(1008, 'rate limit abuse');
      expect(second.states.at(-1)).toMatchObject({ state: 'reconnecting', delayMs: 999 });
      second.c.close();
      random.mockReturnValue(0);
      const third = client();
      await third.c.connect();
      FakeSocket.all[2].serverClose(1006);
      expect(third.states.at(-1)).toMatchObject({ state: 'reconnecting', delayMs: 0 }); // full jitter: down to 0
      third.c.close();
    } finally {
      random.mockRestore();
    }
  });

  it('a request made while disconnected is sent once the session is back, and answered by its ref', async () => {
    const { c } = client();
    await c.connect();
    FakeSocket.all[0].serverClose(1012);
    const sending = c.send({ channelId: '00000000-0000-4000-8000-000000000000', text: 'queued', clientMsgId: 'c-1' });
    await until(() => FakeSocket.all.length === 2 && FakeSocket.all[1].sent.some((f) => f.event === 'message.send'));
    const frame = FakeSocket.all[1].sent.find((f) => f.event === 'message.send')!;
    expect(frame.data).toMatchObject({ clientMsgId: 'c-1', ref: 'c-1', text: 'queued' });
    const message = { id: 'm', channelId: '00000000-0000-4000-8000-000000000000', seq: 1, rev: 1, sender: { id: 'u1', username: 'alice' }, text: 'queued', clientMsgId: 'c-1', createdAt: new Date().toISOString(), deleted: false, mentions: [], reactions: [] };
    FakeSocket.all[1].frame('error', { code: 'rate_limited', message: 'slow down', ref: 'c-1', retryAfterMs: 5 });
    await until(() => FakeSocket.all[1].sent.filter((f) => f.event === 'message.send').length === 2); // waited out, sent again
    FakeSocket.all[1].frame('message.ack', { clientMsgId: 'c-1', message, duplicate: true, ref: 'c-1' });
    await expect(sending).resolves.toMatchObject({ seq: 1 });
    c.close();
  });
});

describe('the published package (sdk/dist, built by npm run build)', () => {
  it('stands alone: package.json points at built files, and index.d.ts type-checks a consumer with nothing of the server beside it', () => {
    const sdk = join(process.cwd(), 'sdk');
    const pkg = JSON.parse(readFileSync(join(sdk, 'package.json'), 'utf8'));
    expect(pkg).toMatchObject({ name: '@parley/client', type: 'module' });
    expect(pkg.dependencies).toBeUndefined();
    for (const file of [pkg.exports['.'].import, pkg.exports['.'].types]) expect(existsSync(join(sdk, file))).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'parley-sdk-consumer-'));
    try {
      cpSync(join(sdk, 'dist'), join(dir, 'parley-client'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      writeFileSync(
        join(dir, 'app.ts'),
        [
          "import { ParleyClient, type Message, type Conversation } from './parley-client/index.js';",
          "const c = new ParleyClient({ url: 'http://x', token: 't' });",
          "c.on('message', (m: Message) => console.log(m.seq, m.rev, m.reactions[0]?.emoji, m.replyTo?.text));",
          "c.on('conversation', (conv: Conversation) => console.log(conv.mentionCount, conv.headRev, conv.peer?.status));",
          "void c.send({ to: 'bob', text: 'hi', replyToSeq: 2 }).then((m) => m.seq);",
          '// @ts-expect-error: not a field of Message',
          "c.on('message', (m) => m.nonsense);",
        ].join('\n'),
      );
      const tsc = join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc');
      execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom', 'app.ts'], { cwd: dir, stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});
