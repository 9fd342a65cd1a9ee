import { once } from 'node:events';
import { jest } from '@jest/globals';
import { REDIS_SERVER_AVAILABLE, startRedis } from '../../test/helpers/redis-server.js';
import { freshDatabaseUrl, testEnv } from '../../test/helpers/test-app.js';
import { loadConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { ChangeMap } from './changes.js';
import { RedisClients } from './redis-clients.js';
import { RedisFanoutBus } from './redis-fanout-bus.js';

const describeWithRedis = REDIS_SERVER_AVAILABLE ? describe : describe.skip;
if (!REDIS_SERVER_AVAILABLE) console.warn('redis-server is not installed: the RedisFanoutBus tests are skipped');

describeWithRedis('RedisFanoutBus', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.stop());

  it("hears the other instances also when it starts during its connection's handshake", async () => {
    const config = loadConfig(testEnv(freshDatabaseUrl('sqlite').url, { REDIS_URL: redis.url }));
    const clients = new RedisClients(config);
    try {
      // The window between TCP connect and ioredis's ready check, where a SUBSCRIBE broke the connection.
      await once(clients.subscriber, 'connect');
      const bus = new RedisFanoutBus(clients, new MetricsService(), 'parley');
      const heard: ChangeMap['typing'][] = [];
      bus.on('typing', (change) => heard.push(change));
      await bus.onModuleInit();
      const change: ChangeMap['typing'] = { channelId: 'c', user: { id: 'u', username: 'u' } };
      for (let i = 0; i < 40 && heard.length === 0; i++) {
        await clients.commands.publish('parley:bus', JSON.stringify({ i: 'another-instance', t: Date.now(), n: 'typing', c: change }));
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(heard[0]).toEqual(change);
    } finally {
      await clients.onApplicationShutdown();
    }
  });

  it('hears only its own cluster on a shared Redis (REDIS_PREFIX)', async () => {
    const config = loadConfig(testEnv(freshDatabaseUrl('sqlite').url, { REDIS_URL: redis.url }));
    const clients = [new RedisClients(config), new RedisClients(config), new RedisClients(config)];
    try {
      const [a, b, other] = [new RedisFanoutBus(clients[0], new MetricsService(), 'one'), new RedisFanoutBus(clients[1], new MetricsService(), 'one'), new RedisFanoutBus(clients[2], new MetricsService(), 'two')];
      const heard = { b: [] as unknown[], other: [] as unknown[] };
      b.on('typing', (c) => heard.b.push(c));
      other.on('typing', (c) => heard.other.push(c));
      await Promise.all([a.onModuleInit(), b.onModuleInit(), other.onModuleInit()]);
      await new Promise((r) => setTimeout(r, 100)); // the SUBSCRIBEs
      a.publish('typing', { channelId: 'c', user: { id: 'u', username: 'u' } });
      for (let i = 0; i < 40 && heard.b.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(heard.b).toHaveLength(1);
      expect(heard.other).toHaveLength(0);
    } finally {
      await Promise.all(clients.map((c) => c.onApplicationShutdown()));
    }
  });
  it('applies its own changes once (when published) and drops their echo unparsed; the others it applies', async () => {
    const config = loadConfig(testEnv(freshDatabaseUrl('sqlite').url, { REDIS_URL: redis.url }));
    const clients = [new RedisClients(config), new RedisClients(config)];
    try {
      const [a, b] = [new RedisFanoutBus(clients[0], new MetricsService(), 'echo'), new RedisFanoutBus(clients[1], new MetricsService(), 'echo')];
      const heard = { a: [] as string[], b: [] as string[] };
      a.on('typing', (c) => heard.a.push(c.channelId));
      b.on('typing', (c) => heard.b.push(c.channelId));
      await Promise.all([a.onModuleInit(), b.onModuleInit()]);
      await new Promise((r) => setTimeout(r, 100)); // the SUBSCRIBEs
      const parse = jest.spyOn(JSON, 'parse');
      a.publish('typing', { channelId: 'from-a', user: { id: 'u', username: 'u' } });
      b.publish('typing', { channelId: 'from-b', user: { id: 'u', username: 'u' } });
      for (let i = 0; i < 40 && (heard.a.length < 2 || heard.b.length < 2); i++) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 100)); // room for a wrongly applied echo to arrive
      const parsed = parse.mock.calls.length;
      parse.mockRestore();
      expect(heard.a.sort()).toEqual(['from-a', 'from-b']);
      expect(heard.b.sort()).toEqual(['from-a', 'from-b']);
      // Four envelopes arrived in all (each bus hears both); only the two foreign ones were parsed.
      expect(parsed).toBe(2);
    } finally {
      await Promise.all(clients.map((c) => c.onApplicationShutdown()));
    }
  });
});
