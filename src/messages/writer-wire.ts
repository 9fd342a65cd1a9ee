import { AppError, type ErrorCode } from '../common/app-error.js';
import { newMessage, type BatchOptions, type Made, type Outcome, type Request, type SendRequest } from './message-batch.js';

/*
 * What crosses between the main thread and the SQLite writer thread (sqlite-writer.ts and
 * sqlite-writer.worker.ts), and how.
 *
 * Each message is one JSON string, not an object for postMessage's structured clone: the clone
 * (V8's ValueSerializer) walks objects property by property, and arrays with holes (what
 * `new Array(n)` and `.map` make) the slowest way; JSON.stringify and JSON.parse are V8's fastest
 * paths for plain data, and a string crosses as one copy. And a new message's outcome carries back
 * only what the transaction made (id, seq, rev, createdAt, the reply's snapshot): the main thread
 * still has the request, and rebuilds the message from both with the batch's own newMessage.
 * In a profile of the inbound benchmark the clone of full outcomes was 16 % of the main thread's
 * time and 14 % of the writer thread's.
 */

/** Test hook (SqliteWriter.crashOnNextBatches): where in its transaction the thread dies. */
export type CrashPoint = 'before-commit' | 'after-commit';

export type WorkerRequest =
  | { type: 'batch'; id: number; reqs: Request[]; opts: BatchOptions; crash?: CrashPoint }
  | { type: 'index'; id: number; batch: number };

/** An outcome as it crosses: a new message's made fields, an error's parts, or the whole outcome (a duplicate, a change). */
export type WireOutcome = { made: Made } | { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } | Outcome;

export type WorkerReply =
  | { id: number; outcomes: WireOutcome[]; transactions: number; appended: boolean }
  | { id: number; failed?: string };

/**
 * A line for the server's log, from the writer thread: the thread has no logger of its own (the
 * main thread's pino logger is not shared across threads), so what it has to say goes out through
 * the main thread's, with the same format and level as every other line.
 */
export interface WorkerLogLine {
  log: 'warn' | 'error';
  message: string;
}

export const encode = (msg: WorkerRequest | WorkerReply | WorkerLogLine): string => JSON.stringify(msg);
export const decodeRequest = (data: string): WorkerRequest => JSON.parse(data) as WorkerRequest;
export const decodeReply = (data: string): WorkerReply | WorkerLogLine => JSON.parse(data) as WorkerReply | WorkerLogLine;

/** Writer thread: the outcome of request `req`, as it crosses back. */
export function toWire(o: Outcome | AppError): WireOutcome {
  if (o instanceof AppError) return { error: { code: o.code, message: o.message, details: o.details } };
  if ('duplicate' in o && !o.duplicate) {
    const { id, seq, rev, createdAt, replyTo } = o.message;
    return { made: replyTo ? { id, seq, rev, createdAt, replyTo } : { id, seq, rev, createdAt } };
  }
  return o;
}

/** Main thread: the outcome of `req` again, from what crossed back (the same object the batch made). */
export function fromWire(req: Request, w: WireOutcome): Outcome | AppError {
  if ('made' in w) return { message: newMessage(req as SendRequest, w.made), duplicate: false };
  if ('error' in w) return new AppError(w.error.code, w.error.message, w.error.details);
  return w;
}
