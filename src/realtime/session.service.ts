import type { IncomingMessage } from 'node:http';
import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { AppError } from '../common/app-error.js';
import { AuthService, AuthSession, bearerToken } from '../auth/auth.service.js';
import { SessionRevocations } from '../auth/session-revocations.js';
import { ChannelsService } from '../channels/channels.service.js';
import { AppConfig } from '../config/app-config.js';
import { DatabaseWriter } from '../database/database-writer.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { HealthService } from '../health/health.service.js';
import { MessageWriter } from '../messages/message-writer.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { PresenceService } from '../presence/presence.service.js';
import { toUserRef } from '../users/user.mapper.js';
import { clientAddressOf } from './client-address.js';
import { CLOSE, Connection, ConnectionPolicy } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';
import { frame } from './server-events.js';
import { TokenBucket } from './token-bucket.js';

const CONNECTION = Symbol('parley.connection');
const HANDSHAKE_USER = Symbol('parley.user');
const HANDSHAKE_ADDRESS = Symbol('parley.address');

type TaggedSocket = WebSocket & { [CONNECTION]?: Connection };
type TaggedRequest = IncomingMessage & { [HANDSHAKE_USER]?: AuthSession; [HANDSHAKE_ADDRESS]?: string };

export const connectionOf = (socket: unknown): Connection | undefined => (socket as TaggedSocket)?.[CONNECTION];

/** The `pong` listener of every socket (`this` is the socket). */
function markAlive(this: WebSocket): void {
  const conn = connectionOf(this);
  if (conn) conn.alive = true;
}

/**
 * The life of a connection: the handshake check, `session.ready`, presence counts, heartbeats,
 * token expiry and ended sessions (1008), slow consumers and the shutdown that closes every
 * socket with 1001.
 */
@Injectable()
export class SessionService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Session');
  private readonly addressOf: (req: IncomingMessage) => string;
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
    private readonly revocations: SessionRevocations,
    private readonly health: HealthService,
  ) {
    this.addressOf = clientAddressOf(config.trustProxy);
  }

  onModuleInit(): void {
    // A session ended here or on another instance: its sockets here close at once.
    this.bus.on('session.ended', (change) => this.closeSessions(change.sessionIds, change.userId));
    // Ends this instance heard of late (the bus was cut meanwhile): the same, looked up by id.
    this.revocations.onLearned((sessionIds) => this.closeSessions(sessionIds));
  }

  /**
   * `verifyClient` of the ws server: runs before the upgrade completes, so a socket that fails
   * here never exists and no frame of it is ever handled. The token never reaches a log.
   */
  verifyHandshake(
    info: { origin?: string; req: IncomingMessage },
    done: (ok: boolean, status?: number, message?: string) => void,
  ): void {
    if (this.shuttingDown) return done(false, 503, 'Server shutting down');
    // A client without Origin is not a browser (a native app, a server): origins are a browser's rule.
    const allowed = this.config.allowedOrigins;
    if (allowed && info.origin && !allowed.includes(info.origin)) return done(false, 403, 'Origin not allowed');
    const refuse = (err: unknown) => done(false, 401, err instanceof AppError ? err.message : 'Unauthorized');
    const req = info.req as TaggedRequest;
    const address = (req[HANDSHAKE_ADDRESS] = this.addressOf(req));
    const { connectionsPerIp } = this.config.quotas;
    if (connectionsPerIp > 0 && this.registry.fromAddress(address) >= connectionsPerIp) {
      return done(false, 429, 'Too many connections from this address');
    }
    // The last check, once the user is known: their connections here (per instance).
    const admit = (session: AuthSession) => {
      const { connectionsPerUser } = this.config.quotas;
      if (connectionsPerUser > 0 && this.registry.count(session.id) >= connectionsPerUser) {
        return done(false, 429, 'Too many connections for this user');
      }
      req[HANDSHAKE_USER] = session;
      done(true);
    };
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const token = bearerToken(req.headers.authorization) ?? query.get('token');
    const ticket = token === null ? query.get('ticket') : null;
    if (ticket !== null) {
      // A ticket is used up in the database (single use across instances): the one handshake
      // that answers later. ws waits for `done`; no frame is read before it says yes.
      this.auth.verifyTicket(ticket).then((session) => {
        if (this.shuttingDown) return done(false, 503, 'Server shutting down');
        admit(session);
      }, refuse);
      return;
    }
    if (this.auth.isProductToken(token)) {
      // A product's token: its signature is checked against the product's keys (maybe fetched
      // first), and its user and session may be made on first use: asynchronous, like a ticket.
      this.auth.verifyToken(token).then((session) => {
        if (this.shuttingDown) return done(false, 503, 'Server shutting down');
        admit(session);
      }, refuse);
      return;
    }
    try {
      // Bearer and ?token= are decided here and now, from the token and memory alone. When
      // memory cannot vouch for the session (see RevokedSessions), start() asks the database.
      const { recheck: _, ...session } = this.auth.verifySession(token);
      admit(session);
    } catch (err) {
      refuse(err);
    }
  }

  /** Called synchronously when the socket opens: the Connection exists before any frame is read. */
  connect(socket: WebSocket, req: IncomingMessage): Connection | undefined {
    const session = (req as TaggedRequest)[HANDSHAKE_USER];
    if (!session) {
      socket.close(CLOSE.POLICY, 'unauthenticated');
      return undefined;
    }
    // The user's other connections here (several tabs, devices) lend theirs: one user object and,
    // for one login's tabs, one session id string, however many sockets (an idle socket's every
    // byte counts).
    const sibling = this.registry.first(session.id);
    const user = sibling?.user.username === session.username ? sibling.user : { id: session.id, username: session.username };
    const bucket = this.config.rateLimitPerSec > 0 ? new TokenBucket(this.config.rateLimitPerSec, this.config.rateLimitBurst) : null;
    // A short per-process id (an idle connection's every byte counts); sessionId adds the
    // instance prefix to make it unique across instances and restarts.
    const conn = new Connection((++this.connectionSeq).toString(36), user, socket, bucket, this.policy);
    conn.expiresAt = session.expiresAt;
    conn.address = (req as TaggedRequest)[HANDSHAKE_ADDRESS] ?? null;
    conn.sessionId = sibling?.sessionId === session.sessionId ? sibling.sessionId : session.sessionId;
    (socket as TaggedSocket)[CONNECTION] = conn;
    socket.on('pong', markAlive);
    this.registry.add(conn);
    this.metrics.connections.inc();
    this.presence.connected(user); // the same {id, username}: no copy per user
    this.ensureHeartbeat();
    void this.start(conn);
    return conn;
  }

  private async start(conn: Connection): Promise<void> {
    try {
      // The session's row is read once per connection, beside the conversations: a session
      // ended while this instance was not listening, or a user deleted since the token was
      // made, ends here instead of getting a session.
      const [conversations, live] = await Promise.all([
        this.channels.conversations(conn.user.id),
        this.revocations.isLive(conn.sessionId, conn.user.id),
      ]);
      if (!live) return this.endSession(conn);
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
    this.release(conn);
  }

  /**
   * Gives back a connection's place: its quota slots, its presence count, the gauge. Once, at the
   * server's close or at the socket's, whichever comes first: a socket the server has closed may
   * take up to 30 s to finish (a peer reading slowly, or a dead one), and it must not count against
   * the user's reconnect or keep them online meanwhile.
   */
  private release(conn: Connection): void {
    if (!this.registry.remove(conn)) return;
    this.metrics.connections.dec();
    this.presence.disconnected(conn.user);
  }

  /**
   * Every inbound frame passes here first: one number compare and one Map look-up. A token that
   * expired closes the connection at its next frame (not only at the next heartbeat).
   */
  admit(conn: Connection): boolean {
    if (Date.now() >= conn.expiresAt) {
      this.metrics.closes.inc({ reason: 'token_expired' });
      conn.close(CLOSE.POLICY, 'token expired');
      return false;
    }
    if (this.revocations.has(conn.sessionId)) {
      this.endSession(conn);
      return false;
    }
    return true;
  }

  /** Closes this instance's connections of these sessions (of `userId`, when known: no scan). */
  private closeSessions(sessionIds: string[], userId?: string): void {
    const ended = new Set(sessionIds);
    const conns = userId === undefined ? this.registry.connections() : (this.registry.of(userId) ?? []);
    for (const conn of [...conns]) if (ended.has(conn.sessionId)) this.endSession(conn);
  }

  private endSession(conn: Connection): void {
    if (conn.closed) return;
    this.metrics.closes.inc({ reason: 'session_ended' });
    conn.close(CLOSE.POLICY, 'session ended');
  }

  // Shared by every connection (no closure or field per socket: idle connections are mostly overhead).
  private readonly policy: ConnectionPolicy = {
    sendBufferCap: this.config.sendBufferCapBytes,
    onSlowConsumer: (conn) => {
      this.metrics.closes.inc({ reason: 'slow_consumer' });
      conn.close(CLOSE.SLOW_CONSUMER, 'slow consumer');
    },
    // Not while shutting down: presence.stop() retires the whole instance's presence at once (the
    // other instances see it lapse after the grace), where a release per socket would start an
    // offline announcement, and its lastSeenAt write, per user while the database is closing.
    onServerClose: (conn) => {
      if (!this.shuttingDown) this.release(conn);
    },
  };

  /**
   * WebSocket pings: a socket that has not answered the previous ping is terminated. The same
   * round closes idle sessions whose token has expired (1008): the client refreshes its token,
   * reconnects and resumes. (A frame after the expiry closes it at once: see admit.)
   */
  private ensureHeartbeat(): void {
    if (this.heartbeat) return;
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      for (const conn of this.registry.connections()) {
        if (now >= conn.expiresAt) {
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
    this.health.markDraining(); // /health/ready says 503: balancers stop sending clients here
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const conn of [...this.registry.connections()]) conn.close(CLOSE.GOING_AWAY, 'server shutting down');
    await this.presence.stop();
    await this.messageWriter.drain();
    await this.dbWriter.drain();
  }
}
