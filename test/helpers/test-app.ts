import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../../src/app.module.js';
import { configureApp } from '../../src/app.setup.js';
import { AppConfig, loadConfig } from '../../src/config/app-config.js';

export type DbKind = 'sqlite' | 'postgres';

/**
 * The databases the e2e suites run on: always a real SQLite file; PostgreSQL too when
 * DATABASE_URL points at one (CI sets it), each app in a schema of its own.
 */
export const DATABASES: DbKind[] = process.env.DATABASE_URL?.startsWith('postgres') ? ['sqlite', 'postgres'] : ['sqlite'];

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  baseUrl: string;
  wsUrl: string;
  http: () => ReturnType<typeof request>;
  close: () => Promise<void>;
}

let counter = 0;

/** A throwaway database: a fresh SQLite file, or a fresh PostgreSQL schema. */
export function freshDatabaseUrl(kind: DbKind): { url: string; cleanup: () => Promise<void> } {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'parley-test-'));
    return { url: `sqlite:${join(dir, 'parley.sqlite')}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const base = new URL(process.env.DATABASE_URL!);
  const schema = `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  base.searchParams.set('schema', schema);
  return {
    url: base.toString(),
    cleanup: async () => {
      const { default: pg } = await import('pg');
      const u = new URL(process.env.DATABASE_URL!);
      u.searchParams.delete('schema');
      const client = new pg.Client({ connectionString: u.toString() });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
}

/** Test defaults: quiet logs, cheap password hashing, no rate limits unless a test asks for them. */
export function testEnv(databaseUrl: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    JWT_SECRET: 'test-secret-0123456789abcdef',
    LOG_LEVEL: 'silent',
    PASSWORD_HASH_MEMORY_KIB: '1024',
    RATE_LIMIT_PER_SEC: '0',
    HTTP_RATE_LIMIT: 'false',
    PRESENCE_GRACE_MS: '0',
    SQLITE_SYNCHRONOUS: 'NORMAL',
    ...env,
  };
}

export async function startApp(kind: DbKind, env: Record<string, string> = {}): Promise<TestApp> {
  const db = freshDatabaseUrl(kind);
  const config = loadConfig(testEnv(db.url, env));
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(config)] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return {
    app,
    config,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    http: () => request(app.getHttpServer()),
    close: async () => {
      await app.close();
      await db.cleanup();
    },
  };
}

export interface TestUser {
  id: string;
  username: string;
  token: string;
  auth: { Authorization: string };
}

let userCounter = 0;

export async function registerUser(t: TestApp, prefix = 'user'): Promise<TestUser> {
  const username = `${prefix}${++userCounter}_${Math.random().toString(36).slice(2, 7)}`;
  const res = await t.http().post('/auth/register').send({ username, password: 'password123' }).expect(201);
  return { id: res.body.user.id, username, token: res.body.accessToken, auth: { Authorization: `Bearer ${res.body.accessToken}` } };
}

export async function createChannel(t: TestApp, owner: TestUser, members: TestUser[] = [], visibility = 'public'): Promise<string> {
  const name = `room-${++userCounter}-${Math.random().toString(36).slice(2, 7)}`;
  const res = await t
    .http()
    .post('/channels')
    .set(owner.auth)
    .send({ name, visibility, members: members.map((m) => m.username) })
    .expect(201);
  return res.body.id;
}
