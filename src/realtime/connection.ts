import type { WebSocket } from 'ws';
import type { AuthUser } from '../auth/auth.service.js';
import { TokenBucket } from './token-bucket.js';
import { textFrame } from './ws-frame.js';

/**
 * What every connection of an instance shares: how much a socket may have queued, what happens to
 * one that has more, and who hears that the server closed one.
 */
export interface ConnectionPolicy {
  sendBufferCap: number;
  onSlowConsumer: (conn: Connection) => void;
  /**
   * The server has closed this connection (any code): it is over for everyone but the socket,
   * which may take up to CLOSE_GRACE_MAX_MS to finish the close handshake.
   */
  onServerClose: (conn: Connection) => void;
}

/** The ws internals send and sendFrame use (ws exposes no API for a raw write). */
interface RawSocket {
  _socket: TcpSocket;
}
interface TcpSocket {
  writableLength: number;
  writableCorked: number;
  write(b: Buffer): boolean;
  cork(): void;
  uncork(): void;
  end(): void;
}

/** Sockets corked in this turn of the event loop, uncorked together at its end. */
const corked: TcpSocket[] = [];

function uncorkAll(): void {
  for (const tcp of corked.splice(0)) tcp.uncork();
}

/**
 * Holds a socket's writes until the end of this turn of the event loop (one setImmediate for all
 * sockets), so everything one turn writes to it goes out in one system call. The turn that
 * answers a commit's senders (their acks, in the writer's promise callbacks) also runs that
 * commit's fan-out (a setImmediate queued before the acks, so it runs before this one): a sender
 * with eight sends in a batch got nine writes, now one. Nothing waits for a later turn.
 */
function corkForTurn(tcp: TcpSocket): void {
  if (tcp.writableCorked > 0) return;
  tcp.cork();
  if (corked.push(tcp) === 1) setImmediate(uncorkAll);
}

/** How long a closing peer may stay silent before its socket is cut (see Connection.close). */
export const CLOSE_GRACE_MS = 2000;
/** How long a closing peer that keeps reading may take in all: ws's own close timeout. */
export const CLOSE_GRACE_MAX_MS = 30_000;

/** Connection.expiresAtS of a connection that does not expire. */
const NEVER = -1;

/** WebSocket close codes of the protocol. */
export const CLOSE = {
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  /** Several instances: this instance could not repair what it missed; resume (sync) to get it. */
  SERVICE_RESTART: 1012,
  SLOW_CONSUMER: 4008,
} as const;

/**
 * One authenticated socket. Every outgoing frame goes through `send`, which
 *  - holds frames until `session.ready` has gone out, so it is always the first frame;
 *  - closes a slow consumer (4008) instead of letting its buffer grow without bound.
 */
export class Connection {
  alive = true;
  closed = false;
  /** Rate-limited frames in a row; past a threshold the connection is closed (1008). */
  strikes = 0;
  /**
   * When the handshake's token expires (epoch ms): the next frame after it, or the heartbeat,
   * whichever comes first, closes the connection (1008).
   */
  get expiresAt(): number {
    return this.expiresAtS === NEVER ? Infinity : this.expiresAtS * 1000;
  }
  set expiresAt(ms: number) {
    this.expiresAtS = ms === Infinity ? NEVER : Math.floor(ms / 1000);
  }
  /**
   * The same in whole seconds (tokens' `exp` is whole seconds: nothing is lost): epoch seconds
   * are a small integer held in the object, where epoch ms (or Infinity) would make V8 box the
   * field in a HeapNumber of its own, 16 B more per connection. Floored, so never late.
   */
  private expiresAtS = NEVER;
  /** The login session of the token (or ticket): when it ends, the connection closes (1008). */
  sessionId = '';
  /** The client's address (the per-address quota), when known. */
  address: string | null = null;
  /** Complete frames written before session.ready, sent right after it. */
  private held: Buffer[] | null = [];

  constructor(
    readonly id: string,
    readonly user: AuthUser,
    readonly socket: WebSocket,
    readonly bucket: TokenBucket | null,
    /** Shared by every connection of the instance (one field, not two, per connection). */
    private readonly policy: ConnectionPolicy,
  ) {}

  /** False once the socket is closing or closed (from either side): frames would reach nobody. */
  isOpen(): boolean {
    return !this.closed && this.socket.readyState === 1;
  }

  /**
   * A frame of this connection's own (an answer, an error, a personal event), corked until the
   * end of this turn of the event loop (see `corkForTurn`): the acks of one commit and the
   * fan-out of the same commit leave in one write instead of one each.
   */
  send(data: string | Buffer): void {
    if (!this.closed) this.write(textFrame(data), true);
  }

  /** Complete frames built by textFrame(), shared with other connections (the fan-out's inner loop). */
  sendFrame(frame: Buffer): void {
    this.write(frame, false);
  }

  /**
   * Every write: held until session.ready is out, refused to a slow consumer, then straight to
   * the TCP socket (ws exposes no raw write; with compression off it queues nothing of its own, so
   * this and its control frames go out in call order). The TCP socket's queue is read directly
   * (ws's `bufferedAmount` adds its Sender's queue, always empty here, to the same length).
   */
  private write(frame: Buffer, own: boolean): void {
    if (this.closed) return;
    if (this.held) {
      this.held.push(frame);
      return;
    }
    if (this.socket.readyState !== 1) return;
    const tcp = (this.socket as unknown as RawSocket)._socket;
    if (this.overCap(tcp.writableLength, frame.length)) {
      this.policy.onSlowConsumer(this);
      return;
    }
    if (own) corkForTurn(tcp);
    tcp.write(frame);
  }

  /**
   * A slow consumer has unsent bytes piling up: what it left unread plus this write passes the cap.
   * An empty buffer takes any write: one commit's frames (one buffer for a whole group commit) may
   * alone be larger than the cap, and that says nothing about the reader.
   */
  private overCap(buffered: number, bytes: number): boolean {
    return buffered > 0 && buffered + bytes > this.policy.sendBufferCap;
  }

  /** Sends `first` ahead of everything held back since the connection opened. */
  open(first: string): void {
    const held = this.held ?? [];
    this.held = null;
    // Corked with the held frames behind it: all of them leave in one write.
    this.send(first);
    for (const frame of held) this.sendFrame(frame);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.held = null;
    this.policy.onServerClose(this);
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.terminate();
      return;
    }
    this.reapUnlessDraining(Date.now() + CLOSE_GRACE_MAX_MS, this.queued());
  }

  /** The TCP socket under ws's (absent once ws has let go of it). */
  private tcp(): TcpSocket | undefined {
    return (this.socket as unknown as Partial<RawSocket>)._socket;
  }

  /** Bytes of this socket's still in Node's hands (not yet taken by the kernel). */
  private queued(): number {
    return this.tcp()?.writableLength ?? 0;
  }

  /**
   * A peer that never answers the close handshake must not hold the socket forever: it is cut
   * after CLOSE_GRACE_MS. But the close frame leaves behind whatever was queued before it (a slow
   * consumer's is up to SEND_BUFFER_CAP_BYTES), and a peer still reading that queue would lose its
   * close code (1006 instead of 4008) if cut on a fixed clock. So each period in which the queue
   * shrank buys another, up to CLOSE_GRACE_MAX_MS in all (ws's own close timeout).
   *
   * Once Node's queue is empty the close frame is in the kernel, maybe behind frames the peer has
   * not read yet. Then this side only ends (a FIN after the kernel's data) and keeps reading:
   * a socket closed outright answers whatever the peer sends next (the pong to a ping it reads on
   * its way to the close frame) with a reset, and the reset drops the data the kernel still held,
   * close frame included (test/limits.e2e-spec.ts). ws's own close timer (CLOSE_GRACE_MAX_MS
   * after the close) destroys a socket whose peer never finishes.
   */
  private reapUnlessDraining(deadline: number, queuedBefore: number): void {
    setTimeout(() => {
      if (this.socket.readyState === 3) return; // CLOSED: the handshake finished
      const queued = this.queued();
      if (queued > 0 && queued < queuedBefore && Date.now() < deadline) this.reapUnlessDraining(deadline, queued);
      else if (queued === 0) this.tcp()?.end();
      else this.socket.terminate();
    }, CLOSE_GRACE_MS).unref();
  }
}
