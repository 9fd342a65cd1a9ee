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
    const run = this.tail.then(() => this.dataSource.transaction(work));
    // The chain must survive a failed transaction; the caller still sees the error.
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves when every write queued so far has finished (used at shutdown). */
  async drain(): Promise<void> {
    await this.tail;
  }
}
