import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../../src/app.module.js';
import { configureApp } from '../../src/app.setup.js';
import { createOpenApiDocument } from '../../src/common/openapi-document.js';
import { AppConfig, loadConfig } from '../../src/config/app-config.js';
import { checkResponse, OpenApiContract } from './contract.js';
import type { TestClient } from './ws-client.js';

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
  /** supertest on the app; every response is checked against the OpenAPI document (contract.ts). */
  http: () => ReturnType<typeof request>;
  /** supertest without the contract check: for what the document does not describe. */
  rawHttp: () => ReturnType<typeof request>;
  /** The OpenAPI document the app serves (or would, with DOCS_ENABLED off). */
  contract: OpenApiContract;
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

/**
 * The app's modules without HTTP, for a suite of service-level tests: created on a fresh database
 * before the suite, closed (and the database dropped) after it. `ctx` is there from the first
 * test (and the suite's own beforeAll) on.
 */
export function suiteContext(kind: DbKind, env: Record<string, string> = {}): { readonly ctx: INestApplicationContext } {
  let ctx: INestApplicationContext | undefined;
  let cleanup: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    const fresh = freshDatabaseUrl(kind);
    cleanup = fresh.cleanup;
    const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(loadConfig(testEnv(fresh.url, env)))] }).compile();
    ctx = await moduleRef.init();
  });
  afterAll(async () => {
    await ctx?.close();
    await cleanup();
  });
  return {
    get ctx(): INestApplicationContext {
      if (!ctx) throw new Error('suiteContext: the context starts in beforeAll');
      return ctx;
    },
  };
}

/**
 * One app for a whole suite: started before its tests, closed after them; the WebSocket clients a
 * test hands to `track` are closed after that test. Call it in the suite's body (it registers the
 * hooks); `t` is there from the first test on.
 */
export function suiteApp(kind: DbKind, env: Record<string, string> = {}): { readonly t: TestApp; track<C extends TestClient>(client: C): C } {
  const clients: TestClient[] = [];
  let app: TestApp | undefined;
  beforeAll(async () => {
    app = await startApp(kind, env);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(() => app?.close());
  return {
    get t(): TestApp {
      if (!app) throw new Error('suiteApp: the app starts in beforeAll');
      return app;
    },
    track(client) {
      clients.push(client);
      return client;
    },
  };
}

export async function startApp(kind: DbKind, env: Record<string, string> = {}): Promise<TestApp> {
  return startAppOn(freshDatabaseUrl(kind), env);
}

/**
 * An app on a given database: several instances of one database (pass a no-op cleanup to all but
 * the last one closed), or a restart on the same one.
 */
export async function startAppOn(db: { url: string; cleanup: () => Promise<void> }, env: Record<string, string> = {}): Promise<TestApp> {
  const config = loadConfig(testEnv(db.url, env));
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(config)] }).compile();
  const app = moduleRef.createNestApplication({ logger: false, bodyParser: false });
  configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const contract = await openApiContract(app, config);
  return {
    app,
    config,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    http: () => checked(request(app.getHttpServer()), contract),
    rawHttp: () => request(app.getHttpServer()),
    contract,
    close: async () => {
      await app.close();
      await db.cleanup();
    },
  };
}

/** The document the app serves at /docs-json; built the same way when DOCS_ENABLED is off. */
async function openApiContract(app: INestApplication, config: AppConfig): Promise<OpenApiContract> {
  const res = await request(app.getHttpServer()).get('/docs-json');
  return OpenApiContract.of(res.status === 200 ? res.body : (createOpenApiDocument(app, config) as unknown as Record<string, unknown>));
}

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete', 'del', 'head', 'options']);

/**
 * supertest whose every request, once its own expectations pass, fails when the response is not
 * what the OpenAPI document says (an undocumented status, a body off its schema, an extra field).
 */
function checked(agent: ReturnType<typeof request>, contract: OpenApiContract): ReturnType<typeof request> {
  return new Proxy(agent, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || !METHODS.has(prop) || typeof value !== 'function') return value;
      return (url: string, ...rest: unknown[]) => {
        const test = value.call(target, url, ...rest);
        const end = test.end.bind(test);
        test.end = (fn: (err: unknown, res: request.Response) => void) =>
          end((err: unknown, res: request.Response) => {
            const violation = !err && res ? checkResponse(contract, { method: prop === 'del' ? 'delete' : prop, url, status: res.status, headers: res.headers, body: res.body, text: res.text }) : null;
            fn(violation ?? err, res);
          });
        return test;
      };
    },
  });
}

export interface TestUser {
  id: string;
  username: string;
  token: string;
  refreshToken: string;
  auth: { Authorization: string };
}

let userCounter = 0;

export async function registerUser(t: TestApp, prefix = 'user'): Promise<TestUser> {
  const username = `${prefix}${++userCounter}_${Math.random().toString(36).slice(2, 7)}`;
  const res = await t.http().post('/auth/register').send({ username, password: 'password123' }).expect(201);
  return {
    id: res.body.user.id,
    username,
    token: res.body.accessToken,
    refreshToken: res.body.refreshToken,
    auth: { Authorization: `Bearer ${res.body.accessToken}` },
  };
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
