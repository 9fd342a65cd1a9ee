import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';

/**
 * The two Redis connections of an instance: one for commands and publishing, one in subscriber
 * mode (Redis allows nothing else on it). Both reconnect forever on their own; a command while
 * Redis is away fails at once instead of queueing (enableOfflineQueue: false), so nothing waits
 * on Redis: the database is the truth and sends go on without it.
 */
@Injectable()
export class RedisClients implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  readonly commands: Redis;
  readonly subscriber: Redis;
  private lastError = '';

  constructor(config: AppConfig) {
    const url = config.redisUrl!;
    const options = { maxRetriesPerRequest: 1, retryStrategy: (times: number) => Math.min(50 * times, 1000) };
    this.commands = new Redis(url, { ...options, enableOfflineQueue: false, commandTimeout: 500, connectionName: 'parley-commands' });
    // The subscriber queues its SUBSCRIBE until connected, and re-subscribes after a reconnect.
    this.subscriber = new Redis(url, { ...options, connectionName: 'parley-bus' });
    for (const client of [this.commands, this.subscriber]) {
      // Reported by /health/ready and the bus metrics; an unhandled 'error' would crash the process.
      client.on('error', (err: Error) => {
        if (err.message !== this.lastError) this.logger.warn(`${err.message}`);
        this.lastError = err.message;
      });
      client.on('ready', () => (this.lastError = ''));
    }
  }

  get ready(): boolean {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready';
  }

  /** Waits (at most `ms`) for both connections, so a normal boot starts with the bus up. */
  async waitReady(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return this.ready;
  }

  /** Last of all at shutdown (after onModuleDestroy hooks), so the final changes still go out. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.commands.quit(), this.subscriber.quit()]);
    this.commands.disconnect();
    this.subscriber.disconnect();
  }
}
