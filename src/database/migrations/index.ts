// Migrations are listed here explicitly (no globs) so they load the same from dist/ and ts-jest.
// `npm run migration:generate` writes a new file; add its class to the list of its dialect.
import { Init1795306352396 } from './postgres/1795306352396-Init.js';
import { Privacy1795396058890 as PostgresPrivacy1795396058890 } from './postgres/1795396058890-Privacy.js';
import { Init1795306345485 } from './sqlite/1795306345485-Init.js';
import { Privacy1795396058890 as SqlitePrivacy1795396058890 } from './sqlite/1795396058890-Privacy.js';

export const SQLITE_MIGRATIONS: Function[] = [Init1795306345485, SqlitePrivacy1795396058890];
export const POSTGRES_MIGRATIONS: Function[] = [Init1795306352396, PostgresPrivacy1795396058890];
