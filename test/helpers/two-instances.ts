import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../../src/app.module.js';
import { configureApp } from '../../src/app.setup.js';
import { loadConfig } from '../../src/config/app-config.js';
import { startRedis } from './redis-server.js';
import { type DbKind, freshDatabaseUrl, startAppOn, type TestApp, testEnv } from './test-app.js';
import { TestClient } from './ws-client.js';

export interface Instance {
  app: INestApplication;
  http: () => ReturnType<typeof request>;
  wsUrl: string;
}

export interface InstanceUser {
  id: string;
  username: string;
  auth: { Authorization: string };
  token: string;
}

/** An instance of the app in this process, on a shared database and Redis. */
export async function startInstance(databaseUrl: string, redisUrl: string, env: Record<string, string> = {}): Promise<Instance> {
  const config = loadConfig(testEnv(databaseUrl, { REDIS_URL: redisUrl, ...env }));
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(config)] }).compile();
  const app: INestApplication = moduleRef.createNestApplication({ logger: false, bodyParser: false });
  configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, http: () => request(app.getHttpServer()), wsUrl: `ws://127.0.0.1:${port}/ws` };
}

/**
 * A suite's fixture: two instances of the app in this process on one fresh database and a
 * redis-server of their own (started in beforeAll, all stopped in afterAll, with the clients).
 */
export function twoInstances(kind: DbKind, env: Record<string, string> = {}) {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let cleanup: () => Promise<void> = async () => undefined;
  let one: Instance | undefined;
  let two: Instance | undefined;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const fresh = freshDatabaseUrl(kind);
    cleanup = fresh.cleanup;
    one = await startInstance(fresh.url, redis.url, env);
    two = await startInstance(fresh.url, redis.url, env); // migrations already ran
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await one?.app.close();
    await two?.app.close();
    await cleanup();
    await redis?.stop();
  });

  return {
    get one(): Instance {
      return one!;
    },
    get two(): Instance {
      return two!;
    },
    /** A user registered on the first instance. */
    async register(name: string): Promise<InstanceUser> {
      const username = `${name}_${Math.random().toString(36).slice(2, 8)}`;
      const res = await one!.http().post('/auth/register').send({ username, password: 'password123' }).expect(201);
      return { id: res.body.user.id as string, username, auth: { Authorization: `Bearer ${res.body.accessToken}` }, token: res.body.accessToken as string };
    },
    /** A WebSocket client, closed with the suite. */
    async connect(url: string, token: string): Promise<TestClient> {
      const { client } = await TestClient.connect(url, token);
      clients.push(client);
      return client;
    },
  };
}

/**
 * Two full TestApps (HTTP + WebSocket, as startAppOn builds them) on one fresh PostgreSQL
 * database and a redis-server of their own, for suites that drive TestApp helpers on both.
 * Started in beforeAll, closed in afterAll. Call it inside a describe that is skipped when
 * PostgreSQL or redis-server is missing.
 */
export function twoAppsOnPostgres(env: Record<string, string> = {}) {
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let a: TestApp | undefined;
  let b: TestApp | undefined;
  beforeAll(async () => {
    redis = await startRedis();
    const shared = freshDatabaseUrl('postgres');
    // The first leaves the database alone when it closes; the second drops it.
    a = await startAppOn({ url: shared.url, cleanup: async () => undefined }, { REDIS_URL: redis.url, ...env });
    b = await startAppOn(shared, { REDIS_URL: redis.url, ...env });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });
  return {
    get a(): TestApp {
      return a!;
    },
    get b(): TestApp {
      return b!;
    },
  };
}
