import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

/**
 * Every write transaction goes through here.
 *
 * SQLite (better-sqlite3 under TypeORM) has a single connection: two transactions interleaved
 * across `await`s would nest into each other, and one's rollback would take the other's
 * acknowledged rows with it. So on SQLite the transactions run one after another, in order.
 * PostgreSQL has a pool and row locks, so transactions simply run.
 */
@Injectable()
export class DatabaseWriter {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly serialize: boolean;

  constructor(private readonly dataSource: DataSource) {
    this.serialize = dataSource.options.type === 'better-sqlite3';
  }

  get dialect(): 'sqlite' | 'postgres' {
    return this.serialize ? 'sqlite' : 'postgres';
  }

  transaction<T>(work: (em: EntityManager) => Promise<T>): Promise<T> {
    if (!this.serialize) return this.dataSource.transaction(work);
    return this.exclusive(() => this.dataSource.transaction(work));
  }

  /**
   * SQLite only: runs `work` when no other write transaction is open, and none opens until it
   * is done. For work that drives the connection itself (the message batch).
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    // The chain must survive a failed transaction; the caller still sees the error.
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves when every write queued so far has finished (used at shutdown). */
  async drain(): Promise<void> {
    await this.tail;
  }
}
