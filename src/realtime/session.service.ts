import type { IncomingMessage } from 'node:http';
import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { AppError } from '../common/app-error.js';
import { AuthService, AuthUser, bearerToken } from '../auth/auth.service.js';
import { ChannelsService } from '../channels/channels.service.js';
import { AppConfig } from '../config/app-config.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MessageWriter } from '../messages/message-writer.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { PresenceService } from '../presence/presence.service.js';
import { toUserRef } from '../users/user.mapper.js';
import { CLOSE, Connection } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';
import { frame } from './server-events.js';
import { TokenBucket } from './token-bucket.js';

const CONNECTION = Symbol('parley.connection');
const HANDSHAKE_USER = Symbol('parley.user');

type TaggedSocket = WebSocket & { [CONNECTION]?: Connection };
type TaggedRequest = IncomingMessage & { [HANDSHAKE_USER]?: { user: AuthUser; expiresAt: number | null } };

export const connectionOf = (socket: unknown): Connection | undefined => (socket as TaggedSocket)?.[CONNECTION];

/** The `pong` listener of every socket (`this` is the socket). */
function markAlive(this: WebSocket): void {
  const conn = connectionOf(this);
  if (conn) conn.alive = true;
}

/**
 * The life of a connection: the handshake check, `session.ready`, presence counts, heartbeats,
 * slow consumers and the shutdown that closes every socket with 1001.
 */
@Injectable()
export class SessionService implements OnModuleDestroy {
  private readonly logger = new Logger('Session');
  private heartbeat: NodeJS.Timeout | null = null;
  private connectionSeq = 0;
  private shuttingDown = false;

  constructor(
    private readonly config: AppConfig,
    private readonly auth: AuthService,
    private readonly registry: ConnectionRegistry,
    private readonly bus: FanoutBus,
    private readonly channels: ChannelsService,
    private readonly presence: PresenceService,
    private readonly metrics: MetricsService,
    private readonly messageWriter: MessageWriter,
    private readonly dbWriter: DatabaseWriter,
  ) {}

  /**
   * `verifyClient` of the ws server: runs before the upgrade completes, so a socket that fails
   * here never exists and no frame of it is ever handled. The token never reaches a log.
   */
  verifyHandshake(
    info: { origin?: string; req: IncomingMessage },
    done: (ok: boolean, status?: number, message?: string) => void,
  ): void {
    if (this.shuttingDown) return done(false, 503, 'Server shutting down');
    const allowed = this.config.allowedOrigins;
    if (allowed && !(info.origin && allowed.includes(info.origin))) return done(false, 403, 'Origin not allowed');
    try {
      const req = info.req as TaggedRequest;
      const token = bearerToken(req.headers.authorization) ?? new URL(req.url ?? '/', 'http://x').searchParams.get('token');
      req[HANDSHAKE_USER] = this.auth.verifySession(token);
      done(true);
    } catch (err) {
      done(false, 401, err instanceof AppError ? err.message : 'Unauthorized');
    }
  }

  /** Called synchronously when the socket opens: the Connection exists before any frame is read. */
  connect(socket: WebSocket, req: IncomingMessage): Connection | undefined {
    const session = (req as TaggedRequest)[HANDSHAKE_USER];
    if (!session) {
      socket.close(CLOSE.POLICY, 'unauthenticated');
      return undefined;
    }
    const user = session.user;
    const bucket = this.config.rateLimitPerSec > 0 ? new TokenBucket(this.config.rateLimitPerSec, this.config.rateLimitBurst) : null;
    // A short per-process id (an idle connection's every byte counts); sessionId adds the
    // instance prefix to make it unique across instances and restarts.
    const conn = new Connection((++this.connectionSeq).toString(36), user, socket, bucket, this.config.sendBufferCapBytes, this.closeSlowConsumer);
    conn.expiresAt = session.expiresAt;
    (socket as TaggedSocket)[CONNECTION] = conn;
    socket.on('pong', markAlive);
    this.registry.add(conn);
    this.metrics.connections.inc();
    this.presence.connected(toUserRef(user));
    this.ensureHeartbeat();
    void this.start(conn);
    return conn;
  }

  private async start(conn: Connection): Promise<void> {
    try {
      const conversations = await this.channels.conversations(conn.user.id);
      conn.open(
        frame('session.ready', {
          user: toUserRef(conn.user),
          sessionId: `${this.bus.instanceId}.${conn.id}`,
          heartbeatIntervalMs: this.config.heartbeatIntervalMs,
          conversations,
        }),
      );
    } catch (err) {
      this.logger.error(`session start failed: ${(err as Error).message}`);
      conn.open(frame('error', { code: 'unavailable', message: 'session could not start; reconnect' }));
      conn.close(1011, 'session start failed');
    }
  }

  disconnect(socket: WebSocket): void {
    const conn = connectionOf(socket);
    if (!conn) return;
    conn.closed = true;
    this.registry.remove(conn);
    this.metrics.connections.dec();
    this.presence.disconnected(toUserRef(conn.user));
  }

  // Shared by every connection (no closure per socket: idle connections are mostly overhead).
  private readonly closeSlowConsumer = (conn: Connection): void => {
    this.metrics.closes.inc({ reason: 'slow_consumer' });
    conn.close(CLOSE.SLOW_CONSUMER, 'slow consumer');
  };

  /**
   * WebSocket pings: a socket that has not answered the previous ping is terminated. The same
   * round closes sessions whose token has expired (1008): the client logs in again and resumes.
   */
  private ensureHeartbeat(): void {
    if (this.heartbeat) return;
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      for (const conn of this.registry.connections()) {
        if (conn.expiresAt !== null && now >= conn.expiresAt) {
          this.metrics.closes.inc({ reason: 'token_expired' });
          conn.close(CLOSE.POLICY, 'token expired');
          continue;
        }
        if (!conn.alive) {
          this.metrics.closes.inc({ reason: 'heartbeat' });
          conn.socket.terminate();
          continue;
        }
        conn.alive = false;
        try {
          conn.socket.ping();
        } catch {
          conn.socket.terminate();
        }
      }
    }, this.config.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /**
   * Shutdown: refuse new sockets, tell every client to reconnect elsewhere (1001), and let the
   * writes already queued commit. HTTP stops accepting when Nest closes the server afterwards.
   */
  async onModuleDestroy(): Promise<void> {
    this.shuttingDown = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const conn of [...this.registry.connections()]) conn.close(CLOSE.GOING_AWAY, 'server shutting down');
    await this.presence.stop();
    await this.messageWriter.drain();
    await this.dbWriter.drain();
  }
}
