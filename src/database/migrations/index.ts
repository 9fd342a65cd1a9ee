// Migrations are listed here explicitly (no globs) so they load the same from dist/ and ts-jest.
// `npm run migration:generate` writes a new file; add its class to the list of its dialect.
import { Init1795306352396 } from './postgres/1795306352396-Init.js';
import { Privacy1795396058890 as PostgresPrivacy1795396058890 } from './postgres/1795396058890-Privacy.js';
import { Sessions1795396770628 } from './postgres/1795396770628-Sessions.js';
import { Embedding1795403457176 as PostgresEmbedding1795403457176 } from './postgres/1795403457176-Embedding.js';
import { Init1795306345485 } from './sqlite/1795306345485-Init.js';
import { Privacy1795396058890 as SqlitePrivacy1795396058890 } from './sqlite/1795396058890-Privacy.js';
import { Sessions1795396766621 } from './sqlite/1795396766621-Sessions.js';
import { Embedding1795403457176 as SqliteEmbedding1795403457176 } from './sqlite/1795403457176-Embedding.js';

// In timestamp order: TypeORM runs them in that order.
export const SQLITE_MIGRATIONS: Function[] = [Init1795306345485, SqlitePrivacy1795396058890, Sessions1795396766621, SqliteEmbedding1795403457176];
export const POSTGRES_MIGRATIONS: Function[] = [Init1795306352396, PostgresPrivacy1795396058890, Sessions1795396770628, PostgresEmbedding1795403457176];
