import { once } from 'node:events';
import { REDIS_SERVER_AVAILABLE, startRedis } from '../../test/helpers/redis-server.js';
import { freshDatabaseUrl, testEnv } from '../../test/helpers/test-app.js';
import { loadConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { ChangeMap } from './changes.js';
import { RedisClients } from './redis-clients.js';
import { BUS_CHANNEL, RedisFanoutBus } from './redis-fanout-bus.js';

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
      const bus = new RedisFanoutBus(clients, new MetricsService());
      const heard: ChangeMap['typing'][] = [];
      bus.on('typing', (change) => heard.push(change));
      await bus.onModuleInit();
      const change: ChangeMap['typing'] = { channelId: 'c', user: { id: 'u', username: 'u' } };
      for (let i = 0; i < 40 && heard.length === 0; i++) {
        await clients.commands.publish(BUS_CHANNEL, JSON.stringify({ i: 'another-instance', t: Date.now(), n: 'typing', c: change }));
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(heard[0]).toEqual(change);
    } finally {
      await clients.onApplicationShutdown();
    }
  });
});
