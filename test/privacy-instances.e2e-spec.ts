import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../src/app.module.js';
import { configureApp } from '../src/app.setup.js';
import { loadConfig } from '../src/config/app-config.js';
import { REDIS_SERVER_AVAILABLE, startRedis } from './helpers/redis-server.js';
import { DATABASES, freshDatabaseUrl, testEnv } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';

const describeWithRedis = REDIS_SERVER_AVAILABLE ? describe.each(DATABASES) : describe.skip.each(DATABASES);
if (!REDIS_SERVER_AVAILABLE) console.warn('redis-server is not installed: the two-instance privacy tests are skipped');

/** An instance of the app in this process, on a shared database and Redis. */
async function startInstance(databaseUrl: string, redisUrl: string) {
  const config = loadConfig(testEnv(databaseUrl, { REDIS_URL: redisUrl }));
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(config)] }).compile();
  const app: INestApplication = moduleRef.createNestApplication({ logger: false, bodyParser: false });
  configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, http: () => request(app.getHttpServer()), wsUrl: `ws://127.0.0.1:${port}/ws` };
}

/**
 * Acceptances and blocks are committed changes on the bus: an instance that did not make them
 * applies them to its memory (presence peers, the blocks it checks sends against) and renders
 * the presence frames for its own connections.
 */
describeWithRedis('privacy across two instances (Redis bus) on %s', (db) => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let cleanup: () => Promise<void>;
  let one: Awaited<ReturnType<typeof startInstance>>;
  let two: Awaited<ReturnType<typeof startInstance>>;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const fresh = freshDatabaseUrl(db);
    cleanup = fresh.cleanup;
    one = await startInstance(fresh.url, redis.url);
    two = await startInstance(fresh.url, redis.url); // migrations already ran
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await one.app.close();
    await two.app.close();
    await cleanup();
    await redis.stop();
  });

  async function register(name: string) {
    const username = `${name}_${Math.random().toString(36).slice(2, 8)}`;
    const res = await one.http().post('/auth/register').send({ username, password: 'password123' }).expect(201);
    return { id: res.body.user.id as string, username, auth: { Authorization: `Bearer ${res.body.accessToken}` }, token: res.body.accessToken as string };
  }
  async function connect(url: string, token: string) {
    const { client } = await TestClient.connect(url, token);
    clients.push(client);
    return client;
  }

  it('an acceptance, a block and an unblock made on one instance hold on the other', async () => {
    const [alice, bob] = await Promise.all([register('alice'), register('bob')]);
    const a = await connect(one.wsUrl, alice.token);
    const b = await connect(two.wsUrl, bob.token);
    const { channelId } = (await one.http().post('/dms').set(alice.auth).send({ username: bob.username }).expect(200)).body;
    await b.next('conversation.update', (d) => d.conversation.channelId === channelId); // instance two has the DM now
    await a.expectNone('presence.update', 200);

    await two.http().post(`/channels/${channelId}/accept`).set(bob.auth).expect(200);
    expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });
    expect(await b.next('presence.update')).toMatchObject({ user: { id: alice.id }, status: 'online' });

    await two.http().post(`/users/${alice.id}/block`).set(bob.auth).expect(200);
    expect(await a.next('presence.update')).toEqual({ user: { id: bob.id, username: bob.username }, status: 'offline', lastSeenAt: null });
    const send = (text: string) => one.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text, clientMsgId: `x-${Math.random()}` });
    // Instance one rendered that frame after applying the block to its memory: its sends know it too.
    expect((await send('hello?').expect(403)).body.code).toBe('forbidden');

    await two.http().delete(`/users/${alice.id}/block`).set(bob.auth).expect(204);
    expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });
    await send('friends again').expect(201);
  });
});
