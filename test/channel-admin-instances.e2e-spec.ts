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
if (!REDIS_SERVER_AVAILABLE) console.warn('redis-server is not installed: the two-instance channel administration tests are skipped');

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
 * Administrative changes are committed changes on the bus: made on one instance, they reach the
 * memory and the connections of the other at once, and the database refuses what memory has not
 * heard of yet.
 */
describeWithRedis('channel administration across two instances (Redis bus) on %s', (db) => {
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
  const send = (via: typeof one, u: { auth: Record<string, string>; username: string }, channelId: string) =>
    via.http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text: 'hi', clientMsgId: `${u.username}-${Math.random()}` });

  it('a member removed on one instance gets channel.left on every connection and loses access on both at once', async () => {
    const [owner, member] = await Promise.all([register('owner'), register('member')]);
    const { id } = (await one.http().post('/channels').set(owner.auth).send({ name: `x-${Date.now()}`, visibility: 'private', members: [member.username] }).expect(201)).body;
    await two.http().post(`/channels/${id}/accept`).set(member.auth).expect(200);
    const m1 = await connect(one.wsUrl, member.token);
    const m2 = await connect(two.wsUrl, member.token);
    const o2 = await connect(two.wsUrl, owner.token);
    await send(two, member, id).expect(201); // instance two has the channel cached, the member in it
    await m2.next('message.new');

    await one.http().delete(`/channels/${id}/members/${member.id}`).set(owner.auth).expect(204);
    expect(await m1.next('channel.left')).toEqual({ channelId: id });
    expect(await m2.next('channel.left')).toEqual({ channelId: id });
    expect(await o2.next('member.left')).toMatchObject({ user: { id: member.id }, by: { id: owner.id } });
    expect((await send(two, member, id).expect(404)).body.code).toBe('not_found');
    await two.http().get(`/channels/${id}/messages`).set(member.auth).expect(404);
    m2.send('message.send', { channelId: id, text: 'still?', clientMsgId: 'gone', ref: 'g' });
    expect((await m2.next('error', (d) => d.ref === 'g')).code).toBe('not_found');
    await send(two, owner, id).expect(201);
    // Only the message from before the removal reached them.
    await m2.expectNone('message.new', 300, (d) => d.message.seq > 1);
    await m1.expectNone('message.new', 0, (d) => d.message.seq > 1);
  });

  it('roles, renames and the archive made on one instance hold on the other', async () => {
    const [owner, x] = await Promise.all([register('owner'), register('x')]);
    const { id } = (await one.http().post('/channels').set(owner.auth).send({ name: `y-${Date.now()}`, visibility: 'public', members: [x.username] }).expect(201)).body;
    const c2 = await connect(two.wsUrl, x.token);
    await two.http().post(`/channels/${id}/accept`).set(x.auth).expect(200);
    await one.http().patch(`/channels/${id}/members/${x.id}`).set(owner.auth).send({ role: 'admin' }).expect(200);
    expect(await c2.next('member.updated')).toMatchObject({ user: { id: x.id }, role: 'admin' });
    await two.http().patch(`/channels/${id}`).set(x.auth).send({ topic: 'from two' }).expect(200);
    expect(await c2.next('channel.updated')).toMatchObject({ conversation: { topic: 'from two' }, by: { id: x.id } });
    await one.http().post(`/channels/${id}/archive`).set(owner.auth).expect(200);
    expect(await c2.next('channel.updated')).toMatchObject({ conversation: { archived: true } });
    expect((await send(two, x, id).expect(403)).body).toMatchObject({ code: 'forbidden', details: { reason: 'archived' } });
    expect((await two.http().patch(`/channels/${id}`).set(x.auth).send({ topic: 'again' }).expect(403)).body.details.reason).toBe('archived');
  });
});
