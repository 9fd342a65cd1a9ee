import { DataSource, type DataSourceOptions } from 'typeorm';
import { loadConfig, type DatabaseTarget } from '../../src/config/app-config.js';
import { dataSourceOptions } from '../../src/database/data-source-options.js';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../../src/database/migrations/index.js';
import { type DbKind, freshDatabaseUrl, testEnv } from './test-app.js';

/**
 * For a migration's test on data from before it: a fresh database of `kind`, its dialect's
 * migrations in order, and `open(migrations)` which runs those (in one transaction, as the app
 * does) and returns a connection. `upTo(name)` is the list before the migration named so.
 */
export function migrationKit(kind: DbKind) {
  const fresh = freshDatabaseUrl(kind);
  const target: DatabaseTarget = loadConfig(testEnv(fresh.url)).database;
  const all = target.type === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS;
  const options = dataSourceOptions(target, { migrationsRun: false });
  return {
    target,
    all,
    before: (name: string) => all.slice(0, all.findIndex((m) => m.name.startsWith(name))),
    async open(migrations: Function[]): Promise<DataSource> {
      const ds = new DataSource({ ...options, migrations } as DataSourceOptions);
      await ds.initialize();
      if (target.type === 'postgres' && target.schema) await ds.query(`CREATE SCHEMA IF NOT EXISTS "${target.schema}"`);
      await ds.runMigrations({ transaction: 'all' });
      return ds;
    },
    cleanup: fresh.cleanup,
  };
}
