import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AppError } from '../common/app-error.js';
import type { BatchOptions, Outcome, Request } from './message-batch.js';
import { type CrashPoint, decodeReply, encode, fromWire, type WorkerReply, type WorkerRequest } from './writer-wire.js';

/** What the writer thread is started with (plain data: workerData). */
export interface WriterConfig {
  file: string;
  synchronous: 'FULL' | 'NORMAL';
}

export interface BatchResult {
  outcomes: (Outcome | AppError)[];
  transactions: number;
  appended: boolean;
}

/**
 * The worker's entry point. From dist/ it is the compiled `.js` beside this file, run as is.
 * Under Jest the sources are TypeScript (ts-jest compiles them inside Jest's own module system,
 * which a worker thread does not share) and there is no `.js`: the thread then starts from a
 * two-line bootstrap that registers tsx (a devDependency: esbuild per file, `.js` import
 * suffixes resolved to `.ts`, decorators as tsconfig.json says) and imports the `.ts`.
 * (`execArgv: ['--import', 'tsx']` does not do it on Node 20: the thread ignores the hooks.)
 */
function entry(): { source: string | URL; eval: boolean } {
  const js = new URL('./sqlite-writer.worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { source: js, eval: false };
  const ts = new URL('./sqlite-writer.worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(ts)}); })
    .catch((err) => { console.error(err); process.exit(1); });`;
  return { source: boot, eval: true };
}

interface Call {
  resolve: (reply: WorkerReply) => void;
  reject: (err: Error) => void;
}

/**
 * The main thread's handle on the SQLite writer thread (sqlite-writer.worker.ts).
 *
 * Why a thread: a write transaction on better-sqlite3 is synchronous, so on the main thread the
 * statements of a batch and above all the COMMIT's fsync stopped the event loop: no frame was
 * read, no ack or fan-out sent, while the disk flushed. In the thread the loop goes on (the next
 * batch gathers meanwhile) and SQLite's WAL lets the main thread's connections read what is
 * committed while the thread writes.
 *
 * The caller (MessageStore) sends one request at a time, inside DatabaseWriter.exclusive, so the
 * main connection's own write transactions (other services, through TypeORM) and the thread's
 * never contend for SQLite's write lock: a busy wait on the main connection would block the loop.
 *
 * Crash: when the thread dies (an exception outside a request, an out-of-memory, the test hook),
 * the request in flight fails, never with an ack; the next request starts a new thread. Whether
 * the transaction was committed is not known here: SQLite rolls back what the closed connection
 * left open, but the thread may have died between its COMMIT and its reply. MessageStore.writeBatch
 * therefore runs such a batch once more (see there).
 */
export class SqliteWriter {
  private worker: Worker | null = null;
  private readonly calls = new Map<number, Call>();
  private nextId = 1;
  private closed = false;
  private readonly crashes: CrashPoint[] = [];

  constructor(
    private readonly config: WriterConfig,
    /** The server's logger: the thread's own lines (WorkerLogLine) go out through it too. */
    private readonly log: { warn(message: string): void; error(message: string): void },
  ) {}

  /** Starts the thread now (at boot), so the first send does not pay for it. */
  start(): void {
    this.thread();
  }

  async batch(reqs: Request[], opts: BatchOptions): Promise<BatchResult> {
    const crash = this.crashes.shift();
    const reply = await this.call((id) => ({ type: 'batch', id, reqs, opts, ...(crash ? { crash } : {}) }));
    if (!('outcomes' in reply)) throw new Error(`the writer thread failed the batch: ${reply.failed ?? 'no outcomes'}`);
    return {
      outcomes: reply.outcomes.map((o, i) => fromWire(reqs[i], o)),
      transactions: reply.transactions,
      appended: reply.appended,
    };
  }

  /** Indexes every message not yet in the search index (see MessageStore.indexPending). */
  async index(batch: number): Promise<void> {
    const reply = await this.call((id) => ({ type: 'index', id, batch }));
    if ('failed' in reply && reply.failed) throw new Error(reply.failed);
  }

  /**
   * Test hook: the threads of the next batches exit in their transaction, one point per batch:
   * before its COMMIT (nothing of it on disk) or right after (all of it on disk, no reply).
   */
  crashOnNextBatches(...points: CrashPoint[]): void {
    this.crashes.push(...points);
  }

  /** Shutdown, once the callers have drained: the thread ends with nothing in flight. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private call(make: (id: number) => WorkerRequest): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new AppError('unavailable', 'the server is shutting down'));
    const id = this.nextId++;
    const worker = this.thread();
    return new Promise<WorkerReply>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      worker.ref(); // a request in flight keeps the process alive; an idle thread does not
      worker.postMessage(encode(make(id)));
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const { source, eval: isEval } = entry();
    const worker = new Worker(source, { workerData: this.config, eval: isEval });
    worker.unref();
    worker.on('message', (data: string) => {
      const reply = decodeReply(data);
      if ('log' in reply) {
        this.log[reply.log](`writer thread: ${reply.message}`);
        return;
      }
      const call = this.calls.get(reply.id);
      this.calls.delete(reply.id);
      if (this.calls.size === 0) worker.unref();
      call?.resolve(reply);
    });
    worker.on('error', (err) => this.log.error(`SQLite writer thread failed: ${err.stack ?? err.message}`));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = null; // the next request starts a new one
      if (this.calls.size > 0) this.log.error(`SQLite writer thread exited (code ${code}) with ${this.calls.size} request(s) in flight; they fail here (a batch runs once more: MessageStore.writeBatch)`);
      for (const call of this.calls.values()) call.reject(new Error(`the writer thread exited (code ${code})`)); // each request: `internal` (MessageStore)
      this.calls.clear();
    });
    this.worker = worker;
    return worker;
  }
}
