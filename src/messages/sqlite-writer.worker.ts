// The SQLite writer thread (see SqliteWriter in sqlite-writer.ts, which starts it). It owns its
// own better-sqlite3 connection to the database file and runs every message write transaction
// there: the group-commit batches (BEGIN IMMEDIATE .. COMMIT, split on failure) and the FTS5
// indexing batches. The main thread never waits on SQLite's fsync or on the statements.
import 'reflect-metadata'; // message.mapper's Swagger decorators need it when the module loads
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchLog, type BatchStats, type RunInTransaction, writeSplitting } from './message-batch.js';
import { sqliteConnectionPragmas } from '../database/sqlite-pragmas.js';
import { SqliteOps } from './sqlite-ops.js';
import type { WriterConfig } from './sqlite-writer.js';
import { type CrashPoint, decodeRequest, encode, toWire, type WorkerReply, type WorkerRequest } from './writer-wire.js';

const config = workerData as WriterConfig;

/**
 * The same settings as the main connection (data-source-options.ts and TypeORM's driver): WAL,
 * foreign keys on, sqliteConnectionPragmas (the configured `synchronous`, temp_store), and a busy
 * timeout for a lock held by another process (a CLI, a backup). Here a wait blocks only this thread.
 */
const db = new Database(config.file, { timeout: 5000 });
db.pragma('foreign_keys = ON');
db.pragma('journal_mode = WAL');
for (const pragma of sqliteConnectionPragmas(config.synchronous)) db.pragma(pragma);
const ops = new SqliteOps(db);

/** Test hook (SqliteWriter.crashOnNextBatches): where the current batch's thread dies, if it does. */
let crash: CrashPoint | undefined;

const transaction: RunInTransaction = async (work) => {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = await work(ops);
    if (crash === 'before-commit') process.exit(1); // the transaction is open: nothing of it may reach the disk
    db.exec('COMMIT');
    if (crash === 'after-commit') process.exit(1); // committed, and the main thread never hears of it
    return result;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
};

/** Logged by the main thread's logger (SqliteWriter), in order with the replies. */
const log: BatchLog = {
  warn: (message) => parentPort!.postMessage(encode({ log: 'warn', message })),
  error: (message) => parentPort!.postMessage(encode({ log: 'error', message })),
};

async function handle(msg: WorkerRequest): Promise<WorkerReply> {
  switch (msg.type) {
    case 'batch': {
      crash = msg.crash;
      const stats: BatchStats = { transactions: 0, appended: false };
      const outcomes = await writeSplitting(transaction, msg.reqs, msg.opts, log, stats);
      return {
        id: msg.id,
        outcomes: outcomes.map(toWire),
        transactions: stats.transactions,
        appended: stats.appended,
      };
    }
    case 'index':
      for (let full = true; full; ) {
        db.exec('BEGIN IMMEDIATE');
        try {
          full = ops.indexBatch(msg.batch);
          db.exec('COMMIT');
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      }
      return { id: msg.id };
  }
}

// One request at a time, in arrival order (the main thread sends one at a time anyway).
let tail: Promise<unknown> = Promise.resolve();
parentPort!.on('message', (data: string) => {
  const msg = decodeRequest(data);
  tail = tail.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await handle(msg);
    } catch (err) {
      reply = { id: msg.id, failed: (err as Error).message };
    }
    parentPort!.postMessage(encode(reply));
  });
});
