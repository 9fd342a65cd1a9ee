import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { AppConfig, WebhookConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ClaimedEvent, WebhookOutbox } from './webhook-outbox.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signWebhook } from './webhook-signature.js';

/**
 * The wait before retry number `attempt` (1 for the first retry): WEBHOOK_RETRY_MIN_MS doubled
 * each time up to WEBHOOK_RETRY_MAX_MS, of which a random half ("equal jitter"), so that events
 * that failed together (a receiver that was down) do not all come back at the same instant.
 */
export function retryDelayMs(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(base / 2 + random() * (base / 2));
}

/**
 * Sends the outbox to WEBHOOK_URL: claims due events (one per key at a time, see
 * WebhookOutbox.claim), POSTs each signed, deletes it on a 2xx, and otherwise retries it with
 * backoff until WEBHOOK_RETRY_FOR after the event, when it is dropped with an error log and
 * `parley_webhook_dropped_total`. Every instance runs one; the leases decide who sends what.
 */
@Injectable()
export class WebhookDelivery implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Webhooks');
  private readonly cfg: WebhookConfig | null;
  private readonly leaseMs: number;
  private inflight = new Set<Promise<void>>();
  private pumping = false;
  private again = false;
  private stopping = false;
  private kickTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;

  private readonly deliveries: Counter<'result'>;
  private readonly dropped: Counter;
  private readonly latency: Histogram;

  constructor(
    config: AppConfig,
    private readonly outbox: WebhookOutbox,
    private readonly bus: FanoutBus,
    metrics: MetricsService,
  ) {
    this.cfg = config.webhooks;
    // Far longer than an attempt may take, so a live instance never loses an event it is sending.
    this.leaseMs = (this.cfg?.timeoutMs ?? 0) * 3 + 10_000;
    const registers = [metrics.registry];
    const enabled = this.cfg !== null;
    const backlog = () => (enabled ? outbox.backlog() : Promise.resolve({ count: 0, oldestAt: null }));
    new Gauge({
      name: 'parley_webhook_backlog',
      help: 'Webhook events committed and not yet delivered (the whole cluster\'s: the outbox is in the database)',
      registers,
      async collect() {
        this.set((await backlog()).count);
      },
    });
    new Gauge({
      name: 'parley_webhook_oldest_event_age_seconds',
      help: 'Age of the oldest undelivered webhook event (0 when none)',
      registers,
      async collect() {
        const { oldestAt } = await backlog();
        this.set(oldestAt === null ? 0 : Math.max(0, (Date.now() - oldestAt) / 1000));
      },
    });
    this.deliveries = new Counter({ name: 'parley_webhook_attempts_total', help: 'Webhook delivery attempts by this instance, by result (success: a 2xx)', labelNames: ['result'] as const, registers });
    this.dropped = new Counter({ name: 'parley_webhook_dropped_total', help: 'Webhook events given up on after WEBHOOK_RETRY_FOR', registers });
    this.latency = new Histogram({
      name: 'parley_webhook_attempt_seconds',
      help: 'Duration of one webhook POST',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  onApplicationBootstrap(): void {
    if (!this.cfg) return;
    // After an append: now, and once more shortly (on PostgreSQL the commit may not be visible yet).
    this.outbox.onAppended = () => {
      this.kick();
      setTimeout(() => this.kick(), 100).unref();
    };
    this.pollTimer = setInterval(() => this.kick(), this.cfg.pollMs);
    this.pollTimer.unref();
    this.kick();
  }

  /** Looks for due events soon (coalesced). */
  kick(): void {
    if (this.stopping || this.kickTimer || !this.cfg) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      void this.pump();
    }, 5);
  }

  private async pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        const free = this.cfg!.concurrency - this.inflight.size;
        if (free <= 0 || this.stopping) break;
        if (await this.outbox.isEmpty()) break;
        const claimed = await this.outbox.claim(this.bus.instanceId, free, this.leaseMs);
        for (const event of claimed) {
          const p: Promise<void> = this.deliver(event).finally(() => {
            this.inflight.delete(p);
            this.kick(); // the next event of its key is due now
          });
          this.inflight.add(p);
        }
        if (claimed.length === free) this.again = true;
      } while (this.again && !this.stopping);
    } catch (err) {
      this.logger.warn(`could not read the webhook outbox: ${(err as Error).message}`);
    } finally {
      this.pumping = false;
    }
  }

  private async deliver(event: ClaimedEvent): Promise<void> {
    const cfg = this.cfg!;
    const me = this.bus.instanceId;
    const started = Date.now();
    let failure: string;
    try {
      const res = await fetch(cfg.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Parley-Webhooks/1',
          [SIGNATURE_HEADER]: signWebhook(cfg.secret, event.body),
          [DELIVERY_HEADER]: event.eventId,
          [EVENT_HEADER]: event.type,
        },
        body: event.body,
        redirect: 'manual', // a redirect is a misconfigured URL, not a delivery
        signal: AbortSignal.timeout(cfg.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined); // let the connection be reused
      if (res.status >= 200 && res.status < 300) {
        this.latency.observe((Date.now() - started) / 1000);
        this.deliveries.inc({ result: 'success' });
        await this.outbox.remove(event.id, me).catch((err: Error) => this.logger.warn(`delivered ${event.eventId}, not yet removed (${err.message}): it may be sent again`));
        return;
      }
      failure = `HTTP ${res.status}`;
    } catch (err) {
      failure = (err as Error).name === 'TimeoutError' ? `no answer within ${cfg.timeoutMs} ms` : (err as Error).message;
    }
    this.latency.observe((Date.now() - started) / 1000);
    this.deliveries.inc({ result: 'failure' });
    const now = Date.now();
    const deadline = event.createdAt + cfg.retryForMs;
    try {
      if (now >= deadline) {
        this.dropped.inc();
        this.logger.error(`webhook ${event.type} ${event.eventId} dropped after ${event.attempts + 1} attempts over ${Math.round((now - event.createdAt) / 1000)} s (last: ${failure})`);
        await this.outbox.remove(event.id, me);
        return;
      }
      // The last attempt falls on the deadline, not past it.
      const at = Math.min(now + retryDelayMs(event.attempts + 1, cfg.retryMinMs, cfg.retryMaxMs), deadline);
      if (event.attempts === 0) this.logger.warn(`webhook ${event.type} ${event.eventId} failed (${failure}); retrying with backoff`);
      await this.outbox.retryAt(event.id, me, at, failure);
    } catch (err) {
      // The lease runs out and the event is tried again: nothing is lost.
      this.logger.warn(`could not record a webhook attempt: ${(err as Error).message}`);
    }
  }

  /** Shutdown: no new claims; attempts in flight get a moment; the rest of our claims go back. */
  async onModuleDestroy(): Promise<void> {
    if (!this.cfg) return;
    this.stopping = true;
    if (this.kickTimer) clearTimeout(this.kickTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.outbox.release(this.bus.instanceId).catch(() => undefined);
  }
}
