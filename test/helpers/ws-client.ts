import WebSocket from 'ws';
import { AsyncApiContract, ContractViolation, reportViolation } from './contract.js';

export interface Frame {
  event: string;
  data: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * A real `ws` client that records every frame, so a test can wait for the next frame of an
 * event (optionally matching a predicate) or assert that none arrives. Every frame is checked
 * against the AsyncAPI document the server serves: a frame off its schema fails the test
 * (at the next `next()`, else when the test ends).
 */
export class TestClient {
  /** Frames not yet taken by next()/take(). */
  readonly frames: Frame[] = [];
  /** Every frame received, in arrival order. */
  readonly log: Frame[] = [];
  private cursor = 0;
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | null = null;
  private closeWaiters: (() => void)[] = [];
  /** Frames that broke the AsyncAPI document. */
  readonly violations: string[] = [];

  private constructor(
    readonly ws: WebSocket,
    contract: AsyncApiContract | null,
  ) {
    ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString()) as Frame;
      const problem = contract?.checkServerFrame(f);
      if (problem) {
        this.violations.push(problem);
        reportViolation(problem);
      }
      this.frames.push(f);
      this.log.push(f);
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of [...this.waiters.splice(0), ...this.closeWaiters.splice(0)]) w();
    });
    ws.on('error', () => undefined);
  }

  /** Opens a connection and waits for `session.ready` (returned). */
  static async connect(url: string, token: string, opts: { query?: boolean; origin?: string; autoPong?: boolean } = {}): Promise<{ client: TestClient; ready: Frame['data'] }> {
    const client = await TestClient.open(url, token, opts);
    const ready = await client.next('session.ready');
    return { client, ready };
  }

  static async open(url: string, token: string | null, opts: { query?: boolean; origin?: string; autoPong?: boolean } = {}): Promise<TestClient> {
    const contract = await AsyncApiContract.forWsUrl(url);
    const target = opts.query && token ? `${url}?token=${encodeURIComponent(token)}` : url;
    const headers: Record<string, string> = {};
    if (token && !opts.query) headers.Authorization = `Bearer ${token}`;
    const ws = new WebSocket(target, { headers, origin: opts.origin, autoPong: opts.autoPong ?? true });
    const client = new TestClient(ws, contract);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new HandshakeRefused(res.statusCode ?? 0)));
      ws.once('error', reject);
    });
  }

  send(event: string, data: unknown = {}): void {
    this.ws.send(JSON.stringify({ event, data }));
  }

  sendRaw(raw: string | Buffer): void {
    this.ws.send(raw);
  }

  /** The next frame of `event` (after those already taken) matching `match`. */
  async next(event: string, match: (data: Frame['data']) => boolean = () => true, timeoutMs = 5000): Promise<Frame['data']> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.violations.length > 0) throw new ContractViolation(this.violations.join('\n'));
      for (let i = this.cursor; i < this.frames.length; i++) {
        const f = this.frames[i];
        if (f.event === event && match(f.data)) {
          this.frames.splice(i, 1);
          return f.data;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) {
        throw new Error(`no ${event} frame within ${timeoutMs} ms (closed: ${JSON.stringify(this.closed)}); got ${JSON.stringify(this.frames.map((f) => f.event))}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** All frames of `event` received so far (taken). */
  take(event: string): Frame['data'][] {
    const out = this.frames.filter((f) => f.event === event).map((f) => f.data);
    for (let i = this.frames.length - 1; i >= 0; i--) if (this.frames[i].event === event) this.frames.splice(i, 1);
    return out;
  }

  /** Waits `ms` and asserts that no frame of `event` arrived. */
  async expectNone(event: string, ms = 300, match: (data: Frame['data']) => boolean = () => true): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const got = this.frames.filter((f) => f.event === event && match(f.data));
    if (got.length > 0) throw new Error(`unexpected ${event}: ${JSON.stringify(got)}`);
  }

  waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.closed!);
      });
    });
  }

  close(): Promise<unknown> {
    if (this.closed) return Promise.resolve();
    const done = this.waitClosed().catch(() => undefined);
    this.ws.close();
    return done;
  }
}

export class HandshakeRefused extends Error {
  constructor(readonly status: number) {
    super(`handshake refused with HTTP ${status}`);
  }
}
