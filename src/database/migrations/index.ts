// Migrations are listed here explicitly (no globs) so they load the same from dist/ and ts-jest.
// `npm run migration:generate` writes a new file; add its class to the list of its dialect.
import { Init1795306352396 } from './postgres/1795306352396-Init.js';
import { Privacy1795396058890 as PostgresPrivacy1795396058890 } from './postgres/1795396058890-Privacy.js';
import { Sessions1795396770628 } from './postgres/1795396770628-Sessions.js';
import { ChannelAdmin1795403431482 as PostgresChannelAdmin1795403431482 } from './postgres/1795403431482-ChannelAdmin.js';
import { Embedding1795403457176 as PostgresEmbedding1795403457176 } from './postgres/1795403457176-Embedding.js';
import { MessagesChange1795403465739 as PostgresMessagesChange1795403465739 } from './postgres/1795403465739-MessagesChange.js';
import { Webhooks1795403471228 as PostgresWebhooks1795403471228 } from './postgres/1795403471228-Webhooks.js';
import { ReplyQuotes1795403480000 as PostgresReplyQuotes1795403480000 } from './postgres/1795403480000-ReplyQuotes.js';
import { Init1795306345485 } from './sqlite/1795306345485-Init.js';
import { Privacy1795396058890 as SqlitePrivacy1795396058890 } from './sqlite/1795396058890-Privacy.js';
import { Sessions1795396766621 } from './sqlite/1795396766621-Sessions.js';
import { ChannelAdmin1795403431482 as SqliteChannelAdmin1795403431482 } from './sqlite/1795403431482-ChannelAdmin.js';
import { Embedding1795403457176 as SqliteEmbedding1795403457176 } from './sqlite/1795403457176-Embedding.js';
import { MessagesChange1795403465739 as SqliteMessagesChange1795403465739 } from './sqlite/1795403465739-MessagesChange.js';
import { Webhooks1795403471228 as SqliteWebhooks1795403471228 } from './sqlite/1795403471228-Webhooks.js';
import { ReplyQuotes1795403480000 as SqliteReplyQuotes1795403480000 } from './sqlite/1795403480000-ReplyQuotes.js';

// In timestamp order: TypeORM runs them in that order.
export const SQLITE_MIGRATIONS: Function[] = [
  Init1795306345485, SqlitePrivacy1795396058890, Sessions1795396766621, SqliteChannelAdmin1795403431482, SqliteEmbedding1795403457176,
  SqliteMessagesChange1795403465739, SqliteWebhooks1795403471228, SqliteReplyQuotes1795403480000,
];
export const POSTGRES_MIGRATIONS: Function[] = [
  Init1795306352396, PostgresPrivacy1795396058890, Sessions1795396770628, PostgresChannelAdmin1795403431482, PostgresEmbedding1795403457176,
  PostgresMessagesChange1795403465739, PostgresWebhooks1795403471228, PostgresReplyQuotes1795403480000,
];
