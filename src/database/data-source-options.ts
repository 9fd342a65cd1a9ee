import { MessageMention } from '../messages/message-mention.entity.js';
import { Reaction } from '../messages/reaction.entity.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { DatabaseTarget } from '../config/app-config.js';
import { Channel } from '../channels/channel.entity.js';
import { Session } from '../auth/session.entity.js';
import { WsTicket } from '../auth/ws-ticket.entity.js';
import { Membership } from '../channels/membership.entity.js';
import { Message } from '../messages/message.entity.js';
import { Block } from '../users/block.entity.js';
import { User } from '../users/user.entity.js';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from './migrations/index.js';
import { sqliteConnectionPragmas } from './sqlite-pragmas.js';
import { AuditEntry } from '../audit/audit-entry.entity.js';

export const ENTITIES = [User, Channel, Membership, Message, Reaction, MessageMention, Session, WsTicket, Block, AuditEntry];

/**
 * One place that turns DATABASE_URL into TypeORM options. Entities and migrations are listed as
 * classes, not globs, so the same options work from `dist/` and under ts-jest.
 */
export function dataSourceOptions(
  target: DatabaseTarget,
  opts: { sqliteSynchronous?: 'FULL' | 'NORMAL'; migrationsRun?: boolean } = {},
): DataSourceOptions {
  const common = {
    entities: ENTITIES,
    synchronize: false,
    migrationsRun: opts.migrationsRun ?? true,
    // Expected errors (unique violations on races) are handled by the callers; nothing to print.
    logging: false,
  };
  if (target.type === 'sqlite') {
    if (target.file !== ':memory:') mkdirSync(dirname(target.file), { recursive: true });
    return {
      ...common,
      type: 'better-sqlite3',
      database: target.file,
      migrations: SQLITE_MIGRATIONS,
      enableWAL: target.file !== ':memory:',
      // Waits for a lock held by another process (a CLI, a backup) instead of failing at once.
      timeout: 5000,
      statementCacheSize: 500,
      prepareDatabase: (db: { pragma: (s: string) => unknown }) => {
        for (const pragma of sqliteConnectionPragmas(opts.sqliteSynchronous ?? 'FULL')) db.pragma(pragma);
      },
    };
  }
  return {
    ...common,
    type: 'postgres',
    url: target.url,
    migrations: POSTGRES_MIGRATIONS,
    // A schema given in DATABASE_URL (?schema=) becomes the search_path, so every query, raw SQL
    // included, and the migrations table land in it. Tests give each run its own schema this way.
    extra: { max: 10, ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}) },
  };
}

/**
 * PostgreSQL: the schema (when DATABASE_URL names one) is created and the migrations run under an
 * advisory lock, so replicas that start at the same moment on an empty database take turns: the
 * first migrates, the others wait and then find nothing left to run.
 */
export async function migratePostgres(target: Extract<DatabaseTarget, { type: 'postgres' }>, options: DataSourceOptions): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: target.url });
  await client.connect();
  const lock = `parley:migrations:${target.schema ?? 'public'}`;
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [lock]);
    if (target.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${target.schema}"`);
    const dataSource = new DataSource({ ...options, migrationsRun: false, extra: { ...(options.extra as object), max: 1 } } as DataSourceOptions);
    await dataSource.initialize();
    try {
      await dataSource.runMigrations({ transaction: 'all' });
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lock]).catch(() => undefined);
    await client.end();
  }
}
