import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { ConfigError, loadConfig, parseDuration, sha256Buffer } from './app-config.js';

describe('configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  const base = { DATABASE_URL: `sqlite:${join(dir, 'p.sqlite')}` };

  it('has the contract defaults', () => {
    const c = loadConfig({ ...base, JWT_SECRET: 'x'.repeat(32) });
    expect(c).toMatchObject({
      port: 3000, redisUrl: undefined, jwtTtlSeconds: 3600, allowedOrigins: null, logLevel: 'info', maxFrameBytes: 65536,
      rateLimitPerSec: 50, rateLimitBurst: 200, sendBufferCapBytes: 4 * 1024 * 1024, heartbeatIntervalMs: 30000,
      presenceTtlMs: 30000, busHeadCheckMs: 3000, busGapWaitMs: 50, refreshTokenTtlSeconds: 30 * 86400, wsTicketTtlSeconds: 30,
    });
    expect(loadConfig({}).database).toEqual({ type: 'sqlite', file: join(process.cwd(), 'data', 'parley.sqlite') });
  });

  it('parses database URLs, origins and durations', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h:5432/db?schema=abc', JWT_SECRET: 'x'.repeat(32) }).database).toEqual({
      type: 'postgres', url: 'postgres://u@h:5432/db', schema: 'abc',
    });
    expect(loadConfig({ ...base, ALLOWED_ORIGINS: 'https://a.example, https://b.example' }).allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect([parseDuration('90'), parseDuration('15m'), parseDuration('7d')]).toEqual([90, 900, 604800]);
  });

  it.each([
    ['PORT', 'abc'], ['PORT', '70000'], ['DATABASE_URL', 'mysql://x'], ['JWT_TTL', 'forever'], ['LOG_LEVEL', 'loud'],
    ['MAX_FRAME_BYTES', '10'], ['RATE_LIMIT_PER_SEC', '-1'], ['REDIS_URL', 'localhost:6379'], ['JWT_SECRET', 'short'],
    ['PRESENCE_TTL_MS', '10'], ['BUS_HEAD_CHECK_MS', '0'], ['BUS_GAP_WAIT_MS', '-5'], ['REFRESH_TOKEN_TTL', 'a month'],
    ['WS_TICKET_TTL', '-1'], ['PUBLIC_URL', 'chat.example.com'], ['PUBLIC_URL', 'ftp://chat.example.com'], ['PUBLIC_URL', 'https://a.example/?q=1'],
    ['PUBLIC_URL', 'http://[::1'],
  ])('stops the boot on a bad %s, naming it', (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(new RegExp(name));
  });

  it('webhooks: off by default; WEBHOOK_URL needs WEBHOOK_SECRET and the other way round; bad values name their variable', () => {
    expect(loadConfig({ ...base, JWT_SECRET: 'x'.repeat(32) }).webhooks).toBeNull();
    const on = loadConfig({ ...base, JWT_SECRET: 'x'.repeat(32), WEBHOOK_URL: 'https://api.example.com/hooks', WEBHOOK_SECRET: 's'.repeat(16) });
    expect(on.webhooks).toEqual({
      url: 'https://api.example.com/hooks', secret: 's'.repeat(16), timeoutMs: 10000, retryMinMs: 1000, retryMaxMs: 900000, retryForMs: 86400000,
      concurrency: 8, pollMs: 1000, notificationIntervalMs: 60000,
    });
    expect(loadConfig({ ...base, WEBHOOK_URL: 'http://h/x', WEBHOOK_SECRET: 's'.repeat(16), WEBHOOK_RETRY_FOR: '1500ms' }).webhooks?.retryForMs).toBe(1500);
    expect(() => loadConfig({ ...base, WEBHOOK_URL: 'https://api.example.com/hooks' })).toThrow(/WEBHOOK_SECRET: required/);
    expect(() => loadConfig({ ...base, WEBHOOK_SECRET: 's'.repeat(16) })).toThrow(/WEBHOOK_URL: required/);
    for (const [name, value] of [
      ['WEBHOOK_URL', 'api.example.com/hooks'], ['WEBHOOK_URL', 'ftp://a.example/x'], ['WEBHOOK_SECRET', 'short'], ['WEBHOOK_TIMEOUT_MS', '10'],
      ['WEBHOOK_RETRY_MIN_MS', '0'], ['WEBHOOK_RETRY_FOR', 'a day'], ['WEBHOOK_CONCURRENCY', '0'], ['WEBHOOK_POLL_MS', 'often'], ['NOTIFICATION_INTERVAL_MS', '-1'],
    ]) {
      const env = { ...base, WEBHOOK_URL: 'https://a.example/h', WEBHOOK_SECRET: 's'.repeat(16), [name]: value };
      expect(() => loadConfig(env)).toThrow(new RegExp(name));
    }
  });

  it('keeps the API keys hashed only, and reads the product token settings', () => {
    const c = loadConfig({ ...base, PARLEY_API_KEYS: ' k'.padEnd(30, 'k') + ' , ' + 'j'.repeat(30) });
    expect(c.embed.apiKeyHashes).toEqual([sha256Buffer('k'.padEnd(29, 'k')), sha256Buffer('j'.repeat(30))]);
    expect(JSON.stringify(c)).not.toContain('j'.repeat(30));
    expect(loadConfig(base).embed).toEqual({ apiKeyHashes: [], externalAuth: null });
    const jwks = loadConfig({ ...base, AUTH_JWKS_URL: 'https://auth.example/.well-known/jwks.json', AUTH_ISSUER: 'https://auth.example/', AUTH_AUDIENCE: 'parley' });
    expect(jwks.embed.externalAuth).toMatchObject({ issuer: 'https://auth.example/', audience: 'parley', publicKey: null });
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const oneLine = loadConfig({ ...base, AUTH_PUBLIC_KEY: pem.replace(/\n/g, '\\n'), AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' });
    expect(oneLine.embed.externalAuth?.publicKey?.asymmetricKeyType).toBe('ec');
  });

  it.each([
    [{ PARLEY_API_KEYS: 'short' }, 'PARLEY_API_KEYS'],
    [{ PARLEY_API_KEYS: `${'k'.repeat(30)},,` }, 'PARLEY_API_KEYS'],
    [{ AUTH_JWKS_URL: 'not a url', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }, 'AUTH_JWKS_URL'],
    [{ AUTH_JWKS_URL: 'https://auth.example/jwks', AUTH_AUDIENCE: 'a' }, 'AUTH_ISSUER'],
    [{ AUTH_JWKS_URL: 'https://auth.example/jwks', AUTH_ISSUER: 'i' }, 'AUTH_AUDIENCE'],
    [{ AUTH_PUBLIC_KEY: 'not a key', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }, 'AUTH_PUBLIC_KEY'],
    [{ AUTH_PUBLIC_KEY: 'x', AUTH_JWKS_URL: 'https://auth.example/jwks', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }, 'AUTH_PUBLIC_KEY'],
    [{ AUTH_ISSUER: 'i' }, 'AUTH_ISSUER'],
  ])('stops the boot on bad embedding settings %j, naming %s', (env, name) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(new RegExp(name));
  });

  it('refuses REDIS_URL with an in-memory SQLite database, which instances cannot share', () => {
    expect(() => loadConfig({ DATABASE_URL: 'sqlite::memory:', REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: 'x'.repeat(32) })).toThrow(/REDIS_URL/);
    expect(loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: 'x'.repeat(32) }).redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('generates a JWT secret once, keeps it in the data folder, readable by its owner only', () => {
    const first = loadConfig(base);
    expect(first.jwtSecretGenerated).toBe(true);
    expect(loadConfig(base).jwtSecret).toBe(first.jwtSecret);
    expect(readFileSync(join(dir, 'jwt-secret'), 'utf8').trim()).toBe(first.jwtSecret);
    expect(statSync(join(dir, 'jwt-secret')).mode & 0o777).toBe(0o600);
  });
});
