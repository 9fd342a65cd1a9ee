import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service.js';
import type { ChangeMap, ChangeName } from './changes.js';
import { FanoutBus } from './fanout-bus.js';
import { RedisClients } from './redis-clients.js';

/** The pub/sub channel every instance publishes to and listens on (pub/sub ignores database numbers: the prefix separates clusters). */
const busChannel = (prefix: string) => `${prefix}:bus`;

/** What travels: the sender, when it published, and the change. */
interface Envelope {
  i: string;
  t: number;
  n: ChangeName;
  c: ChangeMap[ChangeName];
}

/**
 * Several instances: every committed change is published once (one PUBLISH per committed batch,
 * whatever the number of recipients) on one channel, so Redis keeps each publisher's order.
 * Each instance applies the others' changes as if they were its own; its own it has already
 * applied, without waiting for the round trip.
 *
 * Pub/sub is fire-and-forget: a change published while a subscriber is cut off is lost for it.
 * Losses are repaired elsewhere (ChannelSequencer: seq gaps, periodic head checks, and a resync
 * after every reconnect, which `onResync` listeners run).
 */
@Injectable()
export class RedisFanoutBus extends FanoutBus implements OnModuleInit {
  readonly clustered = true;
  private readonly logger = new Logger('Bus');
  private readonly channel: string;
  /** Set once the bus has been up, or once the boot went on without it: any later 'ready' follows a cut. */
  private mayHaveMissed = false;
  /** How this instance's own envelopes begin (`i` is serialized first): Redis echoes them back. */
  private readonly ownPrefix: string;

  constructor(
    private readonly redis: RedisClients,
    private readonly metrics: MetricsService,
    prefix: string,
  ) {
    super();
    this.channel = busChannel(prefix);
    this.ownPrefix = `{"i":${JSON.stringify(this.instanceId)},`;
  }

  async onModuleInit(): Promise<void> {
    const sub = this.redis.subscriber;
    sub.on('message', (_channel: string, text: string) => this.receive(text));
    // Only once the connection is ready: a SUBSCRIBE sent during ioredis's handshake (status
    // 'connect') puts the connection in subscriber mode before its ready check (INFO), which then
    // fails; ioredis reconnects and forgets the subscription, and the instance silently hears no
    // other instance. Subscribing again on every 'ready' is harmless (idempotent) and also covers
    // a SUBSCRIBE lost to a cut.
    const subscribe = () => void sub.subscribe(this.channel).catch((err: Error) => this.logger.warn(`subscribe failed: ${err.message}`));
    sub.on('ready', () => {
      this.metrics.busConnected.set(1);
      subscribe();
      // Whatever was published while we were away is gone for us.
      if (this.mayHaveMissed) {
        this.logger.warn('bus reconnected: reloading state and refilling from the database');
        this.metrics.busResyncs.inc();
        this.resynced();
      }
      this.mayHaveMissed = true;
    });
    sub.on('close', () => this.metrics.busConnected.set(0));
    // Not awaited: with Redis away at boot the SUBSCRIBE goes out at the first 'ready', the instance serves.
    if (sub.status === 'ready') subscribe();
    this.metrics.busConnected.set(sub.status === 'ready' ? 1 : 0);
    if (!(await this.redis.waitReady(2000))) this.logger.warn('Redis is not reachable yet: serving on, changes reach other instances once it is');
    this.mayHaveMissed = true;
  }

  protected transmit<K extends ChangeName>(name: K, change: ChangeMap[K]): void {
    // `origin` is a connection id of this process: meaningless elsewhere (see ChangeMap).
    const c = 'origin' in change ? { ...change, origin: undefined } : change;
    const text = JSON.stringify({ i: this.instanceId, t: Date.now(), n: name, c } satisfies Envelope);
    this.redis.commands.publish(this.channel, text).then(
      () => this.metrics.busPublished.inc(),
      () => this.metrics.busPublishFailures.inc(), // Redis away: the others refill from the database
    );
  }

  private receive(text: string): void {
    // Our own echo, told apart before parsing: every instance receives every envelope, and
    // parsing its own (half of them with two instances) was a cost per message for nothing.
    if (text.startsWith(this.ownPrefix)) return;
    let env: Envelope;
    try {
      env = JSON.parse(text) as Envelope;
    } catch {
      this.logger.warn('ignored a bus message that is not JSON');
      return;
    }
    if (env.i === this.instanceId) return; // applied when published
    this.metrics.busReceived.inc();
    this.metrics.busLag.observe(Math.max(0, Date.now() - env.t) / 1000);
    try {
      this.dispatch(env.n, env.c, { local: false });
    } catch (err) {
      this.logger.error(`applying ${env.n} from ${env.i} failed: ${(err as Error).stack}`);
    }
  }
}
