// Migrations are listed here explicitly (no globs) so they load the same from dist/ and ts-jest.
// `npm run migration:generate` writes a new file; add its class to the list of its dialect.
import { Init1795306352396 } from './postgres/1795306352396-Init.js';
import { Init1795306345485 } from './sqlite/1795306345485-Init.js';

export const SQLITE_MIGRATIONS: Function[] = [Init1795306345485];
export const POSTGRES_MIGRATIONS: Function[] = [Init1795306352396];
