import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { plainToInstance, Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, MinLength, validateSync } from 'class-validator';
import { parsePublicUrl, type PublicOrigin } from '../common/public-origin.js';

/**
 * The environment, validated once at boot. Everything the service can be told from the outside
 * is here, so a bad value stops the boot with the variable's name instead of failing later.
 */
const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : /^-?\d+$/.test(String(value)) ? Number(value) : value;

export class EnvironmentVariables {
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT: number = 3000;

  @IsOptional() @IsString()
  @Matches(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, {
    message: 'DATABASE_URL must be sqlite:<file>, sqlite::memory: or postgres://...',
  })
  DATABASE_URL: string = 'sqlite:./data/parley.sqlite';

  @IsOptional() @IsString() @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be redis://...' })
  REDIS_URL?: string;

  /** Names of everything Parley keeps in Redis start with it: one Redis can serve several clusters. */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_.-]{1,32}$/, { message: 'REDIS_PREFIX must be 1 to 32 letters, digits, _ . or -' })
  REDIS_PREFIX: string = 'parley';

  @IsOptional() @IsString() @MinLength(16, { message: 'JWT_SECRET must be at least 16 characters' })
  JWT_SECRET?: string;

  @IsOptional() @IsString()
  @Matches(/^\d+(ms|s|m|h|d)?$/, { message: 'JWT_TTL must be a duration such as 3600, 90s, 15m, 1h or 7d' })
  JWT_TTL: string = '1h';

  /** How long a session lives without a refresh (sliding: every refresh starts it again). */
  @IsOptional() @IsString()
  @Matches(/^\d+(ms|s|m|h|d)?$/, { message: 'REFRESH_TOKEN_TTL must be a duration such as 3600, 12h or 30d' })
  REFRESH_TOKEN_TTL: string = '30d';

  /** How long a WebSocket ticket (`POST /auth/ws-ticket`) may wait for its one handshake. */
  @IsOptional() @IsString()
  @Matches(/^\d+(ms|s|m|h|d)?$/, { message: 'WS_TICKET_TTL must be a duration such as 30s' })
  WS_TICKET_TTL: string = '30s';

  @IsOptional() @IsString()
  ALLOWED_ORIGINS?: string;

  @IsOptional() @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: string = 'info';

  @IsOptional() @Transform(toInt) @IsInt() @Min(1024) @Max(16 * 1024 * 1024)
  MAX_FRAME_BYTES: number = 65536;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  RATE_LIMIT_PER_SEC: number = 50;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1)
  RATE_LIMIT_BURST: number = 200;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1024)
  SEND_BUFFER_CAP_BYTES: number = 4 * 1024 * 1024;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100)
  HEARTBEAT_INTERVAL_MS: number = 30000;

  /** How long a user stays "online" after their last connection closes (no flapping on reconnect). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  PRESENCE_GRACE_MS: number = 5000;

  /** Channels larger than this do not carry their members' presence (DMs always do). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  PRESENCE_MAX_CHANNEL_MEMBERS: number = 100;

  /** Least time between two message-driven conversation.update frames of one channel. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(10000)
  CONVERSATION_UPDATE_INTERVAL_MS: number = 100;

  /** FULL survives power loss; NORMAL survives a killed process but not a power cut (WAL mode). */
  @IsOptional() @IsIn(['FULL', 'NORMAL'])
  SQLITE_SYNCHRONOUS: string = 'FULL';

  /** argon2id memory cost in KiB; lower it only for tests and benchmarks. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1024)
  PASSWORD_HASH_MEMORY_KIB: number = 19456;

  /** Unset: on, except when NODE_ENV=production. */
  @IsOptional() @IsString() @Matches(/^(true|false|1|0)$/, { message: 'DOCS_ENABLED must be true or false' })
  DOCS_ENABLED?: string;

  /** Several instances: a killed instance's users go offline for everyone within this time. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000)
  PRESENCE_TTL_MS: number = 30000;

  /** Several instances: how often channel heads are compared with the database (lost pub/sub messages). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(100)
  BUS_HEAD_CHECK_MS: number = 3000;

  /** Several instances: how long a message that overtook its predecessor waits before a refill. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(10000)
  BUS_GAP_WAIT_MS: number = 50;
  /** The HTTP rate limits below (docs/security.md); false turns them all off. */
  @IsOptional() @IsString() @Matches(/^(true|false|1|0)$/, { message: 'HTTP_RATE_LIMIT must be true or false' })
  HTTP_RATE_LIMIT: string = 'true';

  /** Login attempts per client IP and username. */
  @IsOptional() @IsRateLimit()
  HTTP_RATE_LIMIT_LOGIN: string = '10/1m';

  /** Login attempts per client IP, whatever the username (password spraying). */
  @IsOptional() @IsRateLimit()
  HTTP_RATE_LIMIT_LOGIN_IP: string = '30/1m';

  /** Login attempts per username, from any IP (a guess spread over many addresses). */
  @IsOptional() @IsRateLimit()
  HTTP_RATE_LIMIT_LOGIN_USER: string = '100/1h';

  /** Registrations per client IP. */
  @IsOptional() @IsRateLimit()
  HTTP_RATE_LIMIT_REGISTER: string = '20/1h';

  /** Authenticated writes per user (send, create channel, join, leave, DMs, read markers). */
  @IsOptional() @IsRateLimit()
  HTTP_RATE_LIMIT_WRITE: string = '300/1m';

  /** Authenticated reads per user (history, conversations, directory, users). */
  @IsOptional() @IsRateLimit()
  HTTP_RATE_LIMIT_READ: string = '1200/1m';

  /** Express `trust proxy`: which proxies may set X-Forwarded-For, so per-IP limits see clients. */
  @IsOptional() @IsString()
  @Matches(/^(true|false|\d+|((loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d{1,3})?)\s*(,\s*|$))+)$/, {
    message: 'TRUST_PROXY must be false, true, a hop count, or comma-separated addresses/CIDRs (loopback, linklocal, uniquelocal)',
  })
  TRUST_PROXY: string = 'false';

  /** The address to listen on (all interfaces when unset). */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9.:\-[\]]{1,253}$/, { message: 'HOST must be a host name or an IP address' })
  HOST?: string;

  /** When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`. */
  @IsOptional() @IsString() @MinLength(16, { message: 'METRICS_TOKEN must be at least 16 characters' })
  METRICS_TOKEN?: string;

  // Quotas (0 turns one off). Connections are counted per instance.
  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  QUOTA_CONNECTIONS_PER_USER: number = 20;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  QUOTA_CONNECTIONS_PER_IP: number = 1000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  QUOTA_CHANNELS_CREATED_PER_USER: number = 100;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  QUOTA_MEMBERS_PER_REQUEST: number = 100;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  QUOTA_CHANNELS_PER_USER: number = 1000;

  /**
   * The address clients use (behind a proxy, say), named as the server in /docs-json and
   * /asyncapi.json. Unset: each document names the address it was asked at (the Host header).
   */
  @IsOptional() @IsString()
  @Matches(/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/, { message: 'PUBLIC_URL must be an http:// or https:// URL without query or fragment, such as https://chat.example.com' })
  PUBLIC_URL?: string;

  /** Webhooks (docs/webhooks.md): where committed events are POSTed; unset: none, and no outbox rows. */
  @IsOptional() @IsString()
  @Matches(/^https?:\/\/[^/?#\s]+(\/[^#\s]*)?$/, { message: 'WEBHOOK_URL must be an http:// or https:// URL, such as https://api.example.com/parley-events' })
  WEBHOOK_URL?: string;

  /** The HMAC key of X-Parley-Signature; required with WEBHOOK_URL. */
  @IsOptional() @IsString() @MinLength(16, { message: 'WEBHOOK_SECRET must be at least 16 characters' })
  WEBHOOK_SECRET?: string;

  /** One delivery attempt may take this long before it counts as failed. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(60000)
  WEBHOOK_TIMEOUT_MS: number = 10000;

  /** Retries wait WEBHOOK_RETRY_MIN_MS, then twice as long each time (with jitter), up to WEBHOOK_RETRY_MAX_MS. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(10)
  WEBHOOK_RETRY_MIN_MS: number = 1000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10)
  WEBHOOK_RETRY_MAX_MS: number = 900000;

  /** An event still undelivered this long after it happened is dropped (logged and counted). */
  @IsOptional() @IsString()
  @Matches(/^\d+(ms|s|m|h|d)?$/, { message: 'WEBHOOK_RETRY_FOR must be a duration such as 1d or 12h' })
  WEBHOOK_RETRY_FOR: string = '1d';

  /** Deliveries in flight at once per instance (each to a different channel). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100)
  WEBHOOK_CONCURRENCY: number = 8;

  /** How often an idle instance looks for events other instances committed. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(20)
  WEBHOOK_POLL_MS: number = 1000;

  /** notification.needed: at most one per user and channel in this time. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  NOTIFICATION_INTERVAL_MS: number = 60000;

  /** Keys of the server API (`Authorization: ApiKey <key>` on /admin): comma-separated; unset: /admin is closed. */
  @IsOptional() @IsString()
  @Matches(/^\s*[A-Za-z0-9_.~+/=-]{24,256}\s*(,\s*[A-Za-z0-9_.~+/=-]{24,256}\s*)*$/, {
    message: 'PARLEY_API_KEYS must be comma-separated keys of 24 to 256 letters, digits or _ . ~ + / = -',
  })
  PARLEY_API_KEYS?: string;

  /** Product-issued tokens: the product's JWKS (keys by `kid`, fetched again on an unknown one). */
  @IsOptional() @IsString() @Matches(/^https?:\/\/[^\s]+$/, { message: 'AUTH_JWKS_URL must be an http:// or https:// URL' })
  AUTH_JWKS_URL?: string;

  /** Product-issued tokens: one PEM public key (RSA or EC) instead of a JWKS. */
  @IsOptional() @IsString()
  AUTH_PUBLIC_KEY?: string;

  @IsOptional() @IsString() @MinLength(1)
  AUTH_ISSUER?: string;

  @IsOptional() @IsString() @MinLength(1)
  AUTH_AUDIENCE?: string;
}

/** WEBHOOK_*, resolved; null on AppConfig when WEBHOOK_URL is unset. */
export interface WebhookConfig {
  url: string;
  secret: string;
  timeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  retryForMs: number;
  concurrency: number;
  pollMs: number;
  notificationIntervalMs: number;
}

export type DatabaseTarget =
  | { type: 'sqlite'; file: string }
  | { type: 'postgres'; url: string; schema?: string };

/** The resolved configuration the rest of the code reads (injected as a provider). */
export class AppConfig {
  constructor(
    readonly port: number,
    readonly database: DatabaseTarget,
    readonly dataDir: string,
    readonly redisUrl: string | undefined,
    readonly jwtSecret: string,
    readonly jwtSecretGenerated: boolean,
    readonly jwtTtlSeconds: number,
    readonly allowedOrigins: string[] | null,
    readonly logLevel: string,
    readonly maxFrameBytes: number,
    readonly rateLimitPerSec: number,
    readonly rateLimitBurst: number,
    readonly sendBufferCapBytes: number,
    readonly heartbeatIntervalMs: number,
    readonly presenceGraceMs: number,
    readonly conversationUpdateIntervalMs: number,
    readonly presenceMaxChannelMembers: number,
    readonly sqliteSynchronous: 'FULL' | 'NORMAL',
    readonly passwordHashMemoryKib: number,
    readonly docsEnabled: boolean,
    readonly presenceTtlMs: number,
    readonly busHeadCheckMs: number,
    readonly busGapWaitMs: number,
    /** null when HTTP_RATE_LIMIT is false. */
    readonly httpRateLimits: HttpRateLimits | null,
    readonly trustProxy: boolean | number | string[],
    /** Listen address; undefined: all interfaces. */
    readonly host: string | undefined,
    readonly metricsToken: string | undefined,
    readonly refreshTokenTtlSeconds: number,
    readonly wsTicketTtlSeconds: number,
    readonly quotas: Quotas,
    readonly redisPrefix: string,
    /** PUBLIC_URL; null: the documents name the address they were asked at. */
    readonly publicUrl: PublicOrigin | null = null,
    /** null: WEBHOOK_URL unset, no webhooks (and nothing written to the outbox). */
    readonly webhooks: WebhookConfig | null = null,
    /** The server API's keys and the product's token issuer (docs/embedding.md). */
    readonly embed: EmbedConfig = { apiKeyHashes: [], externalAuth: null },
  ) {}
}

export class ConfigError extends Error {}

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text);
  if (!m) throw new ConfigError(`bad duration ${text}`);
  return Math.max(1, Math.floor(Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']));
}

function parseDatabase(url: string): { database: DatabaseTarget; dataDir: string } {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file === ':memory:') return { database: { type: 'sqlite', file }, dataDir: resolve('./data') };
    const abs = resolve(file);
    return { database: { type: 'sqlite', file: abs }, dataDir: dirname(abs) };
  }
  // postgres://user@host/db?schema=name lets tests give each run its own schema.
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError('DATABASE_URL: ?schema= must be a lower-case identifier');
  }
  parsed.searchParams.delete('schema');
  return { database: { type: 'postgres', url: parsed.toString(), schema }, dataDir: resolve('./data') };
}

/**
 * A JWT secret must survive restarts (or every token dies with the process), so an unset
 * JWT_SECRET is generated once and kept in the data folder, readable only by its owner.
 */
function loadOrCreateSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

/** Validates `env` and resolves it; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(new EnvironmentVariables())) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  for (const key of ['REDIS_URL', 'JWT_SECRET', 'ALLOWED_ORIGINS', 'DOCS_ENABLED', 'HOST', 'METRICS_TOKEN', 'PUBLIC_URL', 'WEBHOOK_URL', 'WEBHOOK_SECRET', ...EMBED_VARS]) {
    if (env[key]) raw[key] = env[key] as string;
  }
  const vars = plainToInstance(EnvironmentVariables, raw);
  const errors = validateSync(vars, { skipMissingProperties: false });
  if (errors.length > 0) {
    const lines = errors.map((e) => `${e.property}: ${Object.values(e.constraints ?? {}).join('; ')}`);
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const { database, dataDir } = parseDatabase(vars.DATABASE_URL);
  if (vars.REDIS_URL && database.type === 'sqlite' && database.file === ':memory:') {
    // Every instance would have a database of its own: the bus would announce changes the
    // others cannot read. A shared SQLite file on one machine works; PostgreSQL is the way.
    throw new ConfigError('Invalid configuration:\n  REDIS_URL: several instances cannot share an in-memory SQLite database; use PostgreSQL (or one SQLite file on one machine)');
  }
  if (vars.WEBHOOK_URL && !vars.WEBHOOK_SECRET) throw new ConfigError('Invalid configuration:\n  WEBHOOK_SECRET: required with WEBHOOK_URL (receivers verify X-Parley-Signature with it)');
  // A secret without a URL is most likely a misspelt URL variable: say so rather than send nothing.
  if (vars.WEBHOOK_SECRET && !vars.WEBHOOK_URL) throw new ConfigError('Invalid configuration:\n  WEBHOOK_URL: required with WEBHOOK_SECRET');
  const generated = !vars.JWT_SECRET;
  const origins = vars.ALLOWED_ORIGINS?.split(',').map((o) => o.trim()).filter(Boolean);
  return new AppConfig(
    vars.PORT,
    database,
    dataDir,
    vars.REDIS_URL,
    vars.JWT_SECRET ?? loadOrCreateSecret(dataDir),
    generated,
    parseDuration(vars.JWT_TTL),
    // Unset or `*`: any origin (credentials are bearer tokens, never cookies).
    origins && origins.length > 0 && !origins.includes('*') ? origins : null,
    vars.LOG_LEVEL,
    vars.MAX_FRAME_BYTES,
    vars.RATE_LIMIT_PER_SEC,
    vars.RATE_LIMIT_BURST,
    vars.SEND_BUFFER_CAP_BYTES,
    vars.HEARTBEAT_INTERVAL_MS,
    vars.PRESENCE_GRACE_MS,
    vars.CONVERSATION_UPDATE_INTERVAL_MS,
    vars.PRESENCE_MAX_CHANNEL_MEMBERS,
    vars.SQLITE_SYNCHRONOUS as 'FULL' | 'NORMAL',
    vars.PASSWORD_HASH_MEMORY_KIB,
    vars.DOCS_ENABLED === undefined ? env.NODE_ENV !== 'production' : vars.DOCS_ENABLED === 'true' || vars.DOCS_ENABLED === '1',
    vars.PRESENCE_TTL_MS,
    vars.BUS_HEAD_CHECK_MS,
    vars.BUS_GAP_WAIT_MS,
    vars.HTTP_RATE_LIMIT === 'true' || vars.HTTP_RATE_LIMIT === '1'
      ? {
          login: parseRateLimit(vars.HTTP_RATE_LIMIT_LOGIN),
          loginIp: parseRateLimit(vars.HTTP_RATE_LIMIT_LOGIN_IP),
          loginUser: parseRateLimit(vars.HTTP_RATE_LIMIT_LOGIN_USER),
          register: parseRateLimit(vars.HTTP_RATE_LIMIT_REGISTER),
          write: parseRateLimit(vars.HTTP_RATE_LIMIT_WRITE),
          read: parseRateLimit(vars.HTTP_RATE_LIMIT_READ),
        }
      : null,
    parseTrustProxy(vars.TRUST_PROXY),
    vars.HOST,
    vars.METRICS_TOKEN,
    parseDuration(vars.REFRESH_TOKEN_TTL),
    parseDuration(vars.WS_TICKET_TTL),
    {
      connectionsPerUser: vars.QUOTA_CONNECTIONS_PER_USER,
      connectionsPerIp: vars.QUOTA_CONNECTIONS_PER_IP,
      channelsCreatedPerUser: vars.QUOTA_CHANNELS_CREATED_PER_USER,
      membersPerRequest: vars.QUOTA_MEMBERS_PER_REQUEST,
      channelsPerUser: vars.QUOTA_CHANNELS_PER_USER,
    },
    vars.REDIS_PREFIX,
    vars.PUBLIC_URL ? readPublicUrl(vars.PUBLIC_URL) : null,
    vars.WEBHOOK_URL
      ? {
          url: vars.WEBHOOK_URL,
          secret: vars.WEBHOOK_SECRET!,
          timeoutMs: vars.WEBHOOK_TIMEOUT_MS,
          retryMinMs: vars.WEBHOOK_RETRY_MIN_MS,
          retryMaxMs: Math.max(vars.WEBHOOK_RETRY_MIN_MS, vars.WEBHOOK_RETRY_MAX_MS),
          // parseDuration floors at 1 s; a bare `ms` duration is kept as given (tests use short ones).
          retryForMs: /ms$/.test(vars.WEBHOOK_RETRY_FOR) ? Number(vars.WEBHOOK_RETRY_FOR.slice(0, -2)) : parseDuration(vars.WEBHOOK_RETRY_FOR) * 1000,
          concurrency: vars.WEBHOOK_CONCURRENCY,
          pollMs: vars.WEBHOOK_POLL_MS,
          notificationIntervalMs: vars.NOTIFICATION_INTERVAL_MS,
        }
      : null,
    readEmbedConfig(vars),
  );
}

const EMBED_VARS = ['PARLEY_API_KEYS', 'AUTH_JWKS_URL', 'AUTH_PUBLIC_KEY', 'AUTH_ISSUER', 'AUTH_AUDIENCE'];

/** Where product-issued tokens are checked: a JWKS URL or one public key, with issuer and audience. */
export interface ExternalAuthConfig {
  jwksUrl: URL | null;
  publicKey: KeyObject | null;
  issuer: string;
  audience: string;
}

export interface EmbedConfig {
  /** SHA-256 of each PARLEY_API_KEYS key: the keys themselves are not kept in memory. */
  apiKeyHashes: Buffer[];
  externalAuth: ExternalAuthConfig | null;
}

export const sha256Buffer = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

function readEmbedConfig(vars: EnvironmentVariables): EmbedConfig {
  const problems: string[] = [];
  const apiKeyHashes = (vars.PARLEY_API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean).map(sha256Buffer);
  let externalAuth: ExternalAuthConfig | null = null;
  const wantsExternal = vars.AUTH_JWKS_URL || vars.AUTH_PUBLIC_KEY;
  if (vars.AUTH_JWKS_URL && vars.AUTH_PUBLIC_KEY) problems.push('AUTH_PUBLIC_KEY: set AUTH_JWKS_URL or AUTH_PUBLIC_KEY, not both');
  if (wantsExternal && !vars.AUTH_ISSUER) problems.push('AUTH_ISSUER: required with AUTH_JWKS_URL or AUTH_PUBLIC_KEY (the `iss` product tokens must carry)');
  if (wantsExternal && !vars.AUTH_AUDIENCE) problems.push('AUTH_AUDIENCE: required with AUTH_JWKS_URL or AUTH_PUBLIC_KEY (the `aud` product tokens must carry)');
  if (!wantsExternal && (vars.AUTH_ISSUER || vars.AUTH_AUDIENCE)) problems.push('AUTH_ISSUER: only meaningful with AUTH_JWKS_URL or AUTH_PUBLIC_KEY');
  let publicKey: KeyObject | null = null;
  if (vars.AUTH_PUBLIC_KEY) {
    try {
      // Environments often carry PEMs on one line with literal \n.
      publicKey = createPublicKey(vars.AUTH_PUBLIC_KEY.replace(/\\n/g, '\n'));
      if (publicKey.asymmetricKeyType !== 'rsa' && publicKey.asymmetricKeyType !== 'ec') problems.push('AUTH_PUBLIC_KEY: must be an RSA or EC public key');
    } catch {
      problems.push('AUTH_PUBLIC_KEY: not a PEM public key');
    }
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  if (wantsExternal) {
    externalAuth = { jwksUrl: vars.AUTH_JWKS_URL ? new URL(vars.AUTH_JWKS_URL) : null, publicKey, issuer: vars.AUTH_ISSUER!, audience: vars.AUTH_AUDIENCE! };
  }
  return { apiKeyHashes, externalAuth };
}

/** What one user (or address) may hold; 0: no limit. */
export interface Quotas {
  connectionsPerUser: number;
  connectionsPerIp: number;
  channelsCreatedPerUser: number;
  membersPerRequest: number;
  channelsPerUser: number;
}

/** One HTTP rate limit: at most `limit` requests per `windowSeconds`; null when set to `off`. */
export interface RateLimit {
  limit: number;
  windowSeconds: number;
}
export type HttpRateLimits = Record<'login' | 'loginIp' | 'loginUser' | 'register' | 'write' | 'read', RateLimit | null>;

/**
 * `<requests>/<window>` (window in whole seconds: 90s, 15m, 1h, 1d; no unit is seconds), or
 * `off`. A function declaration, so the class above can use it (hoisted; a const would not be).
 */
function IsRateLimit(): PropertyDecorator {
  return Matches(/^(off|[1-9]\d*\/[1-9]\d*(s|m|h|d)?)$/, { message: '$property must be <requests>/<window> such as 10/1m, or off' });
}

export function parseRateLimit(text: string): RateLimit | null {
  if (text === 'off') return null;
  const [count, window] = text.split('/');
  const m = /^(\d+)(s|m|h|d)?$/.exec(window)!;
  return { limit: Number(count), windowSeconds: Number(m[1]) * UNIT_SECONDS[m[2] ?? 's'] };
}

function readPublicUrl(text: string): PublicOrigin {
  try {
    return parsePublicUrl(text);
  } catch {
    throw new ConfigError(`Invalid configuration:\n  PUBLIC_URL: "${text}" is not a URL`);
  }
}

function parseTrustProxy(text: string): boolean | number | string[] {
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^\d+$/.test(text)) return Number(text);
  const entries = text.split(',').map((a) => a.trim()).filter(Boolean);
  for (const entry of entries) {
    const [address, bits] = entry.split('/');
    const family = ['loopback', 'linklocal', 'uniquelocal'].includes(entry) ? -1 : isIP(address);
    if (family === 0 || (bits !== undefined && Number(bits) > (family === 4 ? 32 : 128))) {
      throw new ConfigError(`Invalid configuration:\n  TRUST_PROXY: "${entry}" is not an address, a CIDR or loopback/linklocal/uniquelocal`);
    }
  }
  return entries;
}
