import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Every Prometheus metric of the service, on its own registry (tests build several apps). */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly connections = new Gauge({ name: 'parley_ws_connections', help: 'Open WebSocket connections', registers: [this.registry] });
  readonly messagesSent = new Counter({ name: 'parley_messages_sent_total', help: 'Messages stored (idempotent retries not counted)', registers: [this.registry] });
  readonly messagesDelivered = new Counter({ name: 'parley_messages_delivered_total', help: 'message.new frames handed to connections', registers: [this.registry] });
  readonly sendLatency = new Histogram({
    name: 'parley_send_ack_seconds',
    help: 'From a message.send frame read to its message.ack written',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly writeBatch = new Histogram({
    name: 'parley_write_batch_requests',
    help: 'Sends and changes committed together in one group-commit batch (one transaction when none fails)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2000],
    registers: [this.registry],
  });
  readonly writeBatchSeconds = new Histogram({
    name: 'parley_write_batch_seconds',
    help: 'From a batch handed to the database (the SQLite writer thread, or PostgreSQL) to its commit reported back',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly fanoutWriteSeconds = new Histogram({
    name: 'parley_fanout_write_seconds',
    help: "Writing one commit's messages of one channel to its members' connections on this instance (the event loop is busy that long)",
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly errors = new Counter({ name: 'parley_errors_total', help: 'Errors answered to clients, by code', labelNames: ['code', 'transport'] as const, registers: [this.registry] });
  readonly closes = new Counter({ name: 'parley_ws_closes_total', help: 'Connections closed by the server, by reason', labelNames: ['reason'] as const, registers: [this.registry] });

  // Several instances (REDIS_URL): the bus of committed changes and its repairs.
  readonly busPublished = new Counter({ name: 'parley_bus_published_total', help: 'Changes published to the other instances', registers: [this.registry] });
  readonly busPublishFailures = new Counter({ name: 'parley_bus_publish_failures_total', help: 'Changes not published because Redis was unreachable (the others refill from the database)', registers: [this.registry] });
  readonly busReceived = new Counter({ name: 'parley_bus_received_total', help: 'Changes received from other instances', registers: [this.registry] });
  readonly busLag = new Histogram({
    name: 'parley_bus_lag_seconds',
    help: 'From publish on one instance to receipt on this one',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly busRefills = new Counter({ name: 'parley_bus_refills_total', help: 'Refills of a channel from the database, by what found the gap', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly busRefilledMessages = new Counter({ name: 'parley_bus_refilled_messages_total', help: 'Messages delivered from a refill instead of the bus', registers: [this.registry] });
  readonly busResyncs = new Counter({ name: 'parley_bus_resyncs_total', help: 'Reconnections to Redis after which state was reloaded', registers: [this.registry] });
  readonly busConnected = new Gauge({ name: 'parley_bus_connected', help: '1 while the bus subscription to Redis is up', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
