import { Emitter } from './emitter.js';
import { FetchLike, httpJson, ParleyError, resolveFetch, tokenExpiry } from './http.js';
import type {
  ClientEvent, ClientEventMap, Conversation, ErrorFrame, Message, PresenceUpdate, ServerEvent, ServerEventMap, SessionReady, SyncResult,
  TypingEvent, UserRef,
} from './protocol.js';

/** The part of the WebSocket API this client uses: the browser's, or `ws`'s (Node). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type ConnectionState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface StateChange {
  state: ConnectionState;
  /** Failed attempts in a row (reconnecting). */
  attempt?: number;
  /** Wait before the next attempt (reconnecting). */
  delayMs?: number;
  /** The close code that ended the previous connection, when there was one. */
  closeCode?: number;
  /** Why the client stopped (closed) or the last attempt failed. */
  error?: ParleyError;
}

export interface MemberEvent {
  /** `updated`: their role changed (`role`). */
  type: 'joined' | 'left' | 'updated';
  channelId: string;
  user: UserRef;
  /** Who did it, when someone else did (servers that send it). */
  by?: UserRef;
  /** The new role (`updated`). */
  role?: string;
}

export interface ParleyEvents {
  /** A new message, once, in seq order per channel (live or recovered after a reconnect). */
  message: (message: Message) => void;
  /** A message changed (edit, delete, reaction): its current state (protocol v1.1 servers). */
  messageUpdated: (message: Message) => void;
  /** A conversation changed, appeared (`updated`) or is gone (`removed`: left, removed). */
  conversation: (conversation: Conversation, change: 'updated' | 'removed') => void;
  presence: (update: PresenceUpdate) => void;
  typing: (event: TypingEvent) => void;
  member: (event: MemberEvent) => void;
  state: (change: StateChange) => void;
  /** An `error` frame that answers nothing this client asked (rare: a server-side problem). */
  error: (error: ParleyError) => void;
}

export interface ParleyClientOptions {
  /** The server's HTTP base, e.g. `https://chat.example.com`; the WebSocket URL is derived (`/ws`). */
  url: string;
  /** A fixed access token; or give `getToken`. */
  token?: string;
  /**
   * Called for a token before each connection (`force: true` when the server refused or expired
   * the last one). See `refreshingToken()`.
   */
  getToken?: (ctx: { force: boolean }) => string | Promise<string>;
  /** Default: the global WebSocket (browsers, Node 22+); pass `ws` on Node 20. */
  WebSocket?: WebSocketConstructor;
  /** Default: the global fetch. */
  fetch?: FetchLike;
  /**
   * How the WebSocket authenticates: `ticket` (default) trades the token for a single-use
   * `/auth/ws-ticket` first, so no long-lived token goes into a URL; `token` puts it in `?token=`.
   */
  auth?: 'ticket' | 'token';
  /** Reconnect back-off: full jitter over min(maxMs, baseMs * 2^attempt). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** A connection that has not shown `session.ready` within this is dropped and retried (ms). */
  connectTimeoutMs?: number;
  /** Messages (and changes) per `sync` page, 1 to 200 (default: the server's, 200). */
  syncPageSize?: number;
  /** Every frame in and out, for debugging and contract tests. */
  onFrame?: (direction: 'in' | 'out', event: string, data: unknown) => void;
}

/** What `send` takes. */
export interface SendInput {
  channelId?: string;
  /** A username: the DM with them (created on first use). */
  to?: string;
  text: string;
  /** Protocol v1.1: the seq of the message this one answers (same channel). */
  replyToSeq?: number;
  /** Your own idempotency key (e.g. to show the message before it is stored); one is made otherwise. */
  clientMsgId?: string;
}

/** Revisions (protocol v1.1); a v1 server sends none: 0 then. */
const revOf = (m: Message): number => m.rev ?? 0;
const headRevOf = (c: Conversation | SyncResult): number | undefined => c.headRev;

/** Per channel: what the application has been handed, and what is waiting for a gap to fill. */
class Cursor {
  /** Highest seq handed to the application; every seq at or below it was handed exactly once. */
  delivered: number;
  /** Highest rev received in sync pages (or the head at start): the `rev` of the next sync. */
  syncRev: number;
  /** Messages that arrived ahead of a gap, by seq. */
  readonly pending = new Map<number, Message>();
  /** Last rev handed out per seq (recent ones): an update is handed out only when newer. */
  readonly revs = new Map<number, number>();
  syncing = false;

  constructor(delivered: number, syncRev: number) {
    this.delivered = delivered;
    this.syncRev = syncRev;
  }

  noteRev(seq: number, rev: number): void {
    this.revs.delete(seq);
    this.revs.set(seq, rev);
    if (this.revs.size > 2000) this.revs.delete(this.revs.keys().next().value!);
  }
}

interface Pending {
  ref: string;
  event: ClientEvent;
  data: Record<string, unknown>;
  /** The events that answer it (besides `error`). */
  answers: ServerEvent[];
  resolve: (data: never) => void;
  reject: (err: ParleyError) => void;
  /** Transient failures so far (unavailable, internal). */
  failures: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** Errors worth the same frame again later (the server says so); the rest reject. */
const TRANSIENT = new Set(['rate_limited', 'unavailable', 'internal']);
const MAX_TRANSIENT_FAILURES = 8;

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/** A fresh `clientMsgId`. */
export const newClientMsgId = (): string => `c-${randomId()}`;

function wsUrlOf(httpUrl: string): string {
  const u = new URL(httpUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/ws`;
  u.search = '';
  u.hash = '';
  return u.toString();
}

/**
 * One user's live session with a Parley server. See sdk/README.md for the guarantees.
 *
 * The rules it keeps:
 *  - every request frame carries a `ref`; sends use their `clientMsgId` as `ref`, so an answer
 *    (ack or error) always finds its request, also when it is `rate_limited` before parsing;
 *  - requests not answered when a connection ends are sent again on the next one, in order:
 *    every request of the protocol is idempotent (sends by `clientMsgId`);
 *  - per channel, messages reach the application only in seq order, each once: a live frame
 *    ahead of a gap waits in `pending` while a `sync` fills the gap.
 */
export class ParleyClient extends Emitter<ParleyEvents> {
  readonly url: string;
  private readonly wsUrl: string;
  private readonly fetch: FetchLike;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly opts: ParleyClientOptions;

  private ws: WebSocketLike | null = null;
  private _state: ConnectionState = 'idle';
  private attempt = 0;
  private token: string | undefined;
  private forceToken = false;
  private tokenWasForced = false;
  private useTickets: boolean;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private lastFrameAt = 0;
  private heartbeatMs = 30000;
  private hadSession = false;
  private refCounter = 0;
  private connectWaiters: { resolve: () => void; reject: (e: ParleyError) => void }[] = [];

  private readonly pending = new Map<string, Pending>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly convs = new Map<string, Conversation>();
  /** True once the server has shown it speaks protocol v1.1 (revs). */
  private v11 = false;
  private _user: UserRef | null = null;

  constructor(options: ParleyClientOptions) {
    super();
    if (!options.token && !options.getToken) throw new Error('@parley/client: give `token` or `getToken`');
    this.opts = options;
    this.url = options.url.replace(/\/+$/, '');
    this.wsUrl = wsUrlOf(this.url);
    this.fetch = resolveFetch(options.fetch);
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error('@parley/client: no WebSocket: pass `WebSocket` (e.g. from the `ws` package) in the options');
    this.WebSocketImpl = WS;
    this.token = options.token;
    this.useTickets = (options.auth ?? 'ticket') === 'ticket';
  }

  private isClosed(): boolean {
    return this._state === 'closed';
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The signed-in user (after the first `session.ready`). */
  get user(): UserRef | null {
    return this._user;
  }

  /** True when the server speaks protocol v1.1 (edits, deletes, reactions, replies). */
  get supportsRevisions(): boolean {
    return this.v11;
  }

  /** The conversation list, most recent activity first; kept live. */
  get conversations(): Conversation[] {
    const at = (c: Conversation) => (c.lastMessage ? Date.parse(c.lastMessage.createdAt) : 0);
    return [...this.convs.values()].sort((a, b) => at(b) - at(a));
  }

  conversation(channelId: string): Conversation | undefined {
    return this.convs.get(channelId);
  }

  /** Resolves at the first `session.ready`; keeps reconnecting after that until `close()`. */
  connect(): Promise<void> {
    if (this._state === 'closed') return Promise.reject(new ParleyError('closed', 'this client was closed; make a new one'));
    const ready = new Promise<void>((resolve, reject) => {
      if (this._state === 'ready') resolve();
      else this.connectWaiters.push({ resolve, reject });
    });
    if (this._state === 'idle') {
      this.setState({ state: 'connecting' });
      void this.open();
    }
    return ready;
  }

  /** Ends the session for good: unanswered requests reject with `closed`. */
  close(): void {
    this.shutdown(new ParleyError('closed', 'the client was closed'));
  }

  private shutdown(err: ParleyError): void {
    if (this._state === 'closed') return;
    this.stopTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) this.abandon(ws, 1000, 'client closed');
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const w of this.connectWaiters.splice(0)) w.reject(err);
    this.setState({ state: 'closed', ...(err.code === 'closed' ? {} : { error: err }) });
  }

  // ---------------------------------------------------------------- the operations

  /**
   * Sends a message. Resolves once, with the stored message (the original one when the server
   * had it already), or rejects with the server's error code. Retried on every reconnect with
   * the same `clientMsgId` until the server answers.
   */
  send(input: SendInput): Promise<Message> {
    if ((input.channelId === undefined) === (input.to === undefined)) {
      return Promise.reject(new ParleyError('invalid_payload', 'give exactly one of channelId or to'));
    }
    const clientMsgId = input.clientMsgId ?? newClientMsgId();
    const data: Record<string, unknown> = { text: input.text, clientMsgId };
    if (input.channelId !== undefined) data.channelId = input.channelId;
    else data.to = input.to;
    if (input.replyToSeq !== undefined) data.replyToSeq = input.replyToSeq;
    if (this.pending.has(clientMsgId)) {
      return Promise.reject(new ParleyError('conflict', `a send with clientMsgId ${clientMsgId} is already under way`));
    }
    // The message itself reaches `message` listeners through message.new (or a sync), in order.
    return this.request('message.send', data, ['message.ack'], clientMsgId).then((ack) => (ack as ServerEventMap['message.ack']).message);
  }

  /** Joins a public channel by name (created if missing) or any channel by id. */
  async join(target: { name: string } | { channelId: string }): Promise<Conversation> {
    const { conversation } = (await this.request('channel.join', { ...target }, ['channel.joined'])) as ServerEventMap['channel.joined'];
    this.applyConversation(conversation, 'joined');
    return conversation;
  }

  async leave(channelId: string): Promise<void> {
    await this.request('channel.leave', { channelId }, ['channel.left']);
    this.removeConversation(channelId);
  }

  /** Moves the read marker (only forward); resolves with the updated conversation. */
  async markRead(channelId: string, seq: number): Promise<Conversation> {
    const { conversation } = (await this.request('read', { channelId, seq }, ['conversation.update'])) as ServerEventMap['conversation.update'];
    this.applyConversation(conversation, 'update');
    return conversation;
  }

  /** Tells the channel's other members you are typing (dropped while disconnected: it is stale by then). */
  typing(channelId: string): void {
    if (this._state === 'ready') this.sendFrame('typing', { channelId });
  }

  /** A page of older messages (ascending); not handed to `message` listeners. */
  async history(channelId: string, options: { beforeSeq?: number; limit?: number } = {}): Promise<{ messages: Message[]; hasMore: boolean }> {
    const data: Record<string, unknown> = { channelId };
    if (options.beforeSeq !== undefined) data.beforeSeq = options.beforeSeq;
    if (options.limit !== undefined) data.limit = options.limit;
    const page = (await this.request('history', data, ['history.result'])) as ServerEventMap['history.result'];
    return { messages: page.messages, hasMore: page.hasMore };
  }

  /**
   * Protocol v1.1: edits your message's text. Resolves with the message's new state (also handed
   * to `messageUpdated` listeners, once). Like every change, retried across reconnects: the same
   * change again changes nothing.
   */
  edit(channelId: string, seq: number, text: string): Promise<Message> {
    return this.change('message.edit', { channelId, seq, text });
  }

  /** Protocol v1.1: deletes a message (yours, or any as the channel's owner/admin): its tombstone. */
  delete(channelId: string, seq: number): Promise<Message> {
    return this.change('message.delete', { channelId, seq });
  }

  /** Protocol v1.1: adds (or with `remove: true` takes back) your reaction. Idempotent. */
  react(channelId: string, seq: number, emoji: string, options: { remove?: boolean } = {}): Promise<Message> {
    return this.change(options.remove ? 'reaction.remove' : 'reaction.add', { channelId, seq, emoji });
  }

  /** Any HTTP call of the API with this client's token (`/users?query=`, `/search/messages`, …). */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await httpJson<T>(this.fetch, this.url, method, path, body, await this.currentToken());
    } catch (err) {
      if (!(err instanceof ParleyError) || err.code !== 'unauthorized' || !this.opts.getToken) throw err;
      this.forceToken = true; // expired: one more try with a fresh token
      return httpJson<T>(this.fetch, this.url, method, path, body, await this.currentToken());
    }
  }

  /** Users whose name contains `query` (to start a DM). */
  searchUsers(query: string): Promise<UserRef[]> {
    return this.api<UserRef[]>('GET', `/users?query=${encodeURIComponent(query)}`);
  }

  /** Full-text search over your channels (protocol v1.1 servers). */
  searchMessages(q: string, options: { channelId?: string; limit?: number; before?: string } = {}): Promise<{ hits: { message: Message }[]; nextCursor: string | null }> {
    const qs = new URLSearchParams({ q });
    for (const [k, v] of Object.entries(options)) if (v !== undefined) qs.set(k, String(v));
    return this.api('GET', `/search/messages?${qs}`);
  }

  /**
   * Mutes a conversation for you (the server makes no `notification.needed` webhook event, the
   * mobile push, for you in it; messages and unread counts are unchanged), or with `false` unmutes
   * it. Idempotent. Every one of your connections gets the conversation's new `muted` through a
   * `conversation.update`; this client's list has it at once.
   */
  async mute(channelId: string, muted = true): Promise<{ channelId: string; muted: boolean }> {
    const res = await this.api<{ channelId: string; muted: boolean }>(muted ? 'POST' : 'DELETE', `/channels/${encodeURIComponent(channelId)}/mute`);
    const c = this.convs.get(channelId);
    if (c && c.muted !== res.muted) this.applyConversation({ ...c, muted: res.muted }, 'update');
    return res;
  }

  /** A change is answered by the `message.updated` carrying its ref (applied by onFrame). */
  private async change(event: 'message.edit' | 'message.delete' | 'reaction.add' | 'reaction.remove', data: Record<string, unknown>): Promise<Message> {
    return ((await this.request(event, data, ['message.updated'])) as ServerEventMap['message.updated']).message;
  }

  // ---------------------------------------------------------------- requests and the outbox

  private request(event: ClientEvent, data: Record<string, unknown>, answers: ServerEvent[], ref = `q${++this.refCounter}`): Promise<unknown> {
    if (this._state === 'closed') return Promise.reject(new ParleyError('closed', 'the client was closed'));
    return new Promise((resolve, reject) => {
      const p: Pending = { ref, event, data: { ...data, ref }, answers, resolve: resolve as (d: never) => void, reject, failures: 0 };
      this.pending.set(ref, p);
      if (this._state === 'ready') this.sendFrame(event, p.data as never);
    });
  }

  private settle(p: Pending, event: string, data: Record<string, unknown>): void {
    if (event === 'error') {
      const e = data as unknown as ErrorFrame;
      const err = new ParleyError(e.code, e.message, e.details, undefined, e.retryAfterMs);
      if (TRANSIENT.has(e.code) && p.failures < MAX_TRANSIENT_FAILURES) {
        p.failures += e.code === 'rate_limited' ? 0 : 1;
        const wait = e.retryAfterMs ?? this.backoffDelay(p.failures);
        p.timer = setTimeout(() => {
          p.timer = undefined;
          if (this._state === 'ready' && this.pending.get(p.ref) === p) this.sendFrame(p.event, p.data as never);
        }, wait);
        return;
      }
      this.pending.delete(p.ref);
      p.reject(err);
      return;
    }
    if (!p.answers.includes(event as ServerEvent)) return;
    this.pending.delete(p.ref);
    if (p.timer) clearTimeout(p.timer);
    p.resolve(data as never);
  }

  private sendFrame<K extends ClientEvent>(event: K, data: ClientEventMap[K]): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return;
    this.opts.onFrame?.('out', event, data);
    try {
      ws.send(JSON.stringify({ event, data }));
    } catch {
      // the close event follows; what was not answered is sent again on the next connection
    }
  }

  // ---------------------------------------------------------------- the connection

  private async open(): Promise<void> {
    this.reconnectTimer = null;
    if (this._state === 'closed') return;
    let target: string;
    try {
      target = await this.authenticatedUrl();
    } catch (err) {
      const e = err instanceof ParleyError ? err : new ParleyError('network', String((err as Error)?.message ?? err));
      if (e.code === 'unauthorized') {
        // Refused: once more with a fresh token from getToken; a fresh one refused too, or no
        // getToken to ask, ends the client (reconnecting would be refused forever).
        if (!this.opts.getToken || this.tokenWasForced) return this.fail(e);
        this.forceToken = true;
        return this.scheduleReconnect(undefined, e, 0);
      }
      return this.scheduleReconnect(undefined, e);
    }
    if (this.isClosed()) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(target);
    } catch (err) {
      return this.scheduleReconnect(undefined, new ParleyError('network', (err as Error).message));
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (this.ws === ws && this._state !== 'ready') this.lost(ws, 4000, 'connect timeout');
    }, this.opts.connectTimeoutMs ?? 15000);
    ws.onmessage = (ev) => this.onFrame(ws, ev.data);
    ws.onclose = (ev) => this.lost(ws, ev.code, ev.reason);
    ws.onerror = () => undefined; // the close event follows
  }

  /** The WebSocket URL with a ticket (or the token), after making sure the token is fresh. */
  private async authenticatedUrl(): Promise<string> {
    const token = await this.currentToken();
    if (this.useTickets) {
      try {
        const { ticket } = await httpJson<{ ticket: string }>(this.fetch, this.url, 'POST', '/auth/ws-ticket', undefined, token);
        return `${this.wsUrl}?ticket=${encodeURIComponent(ticket)}`;
      } catch (err) {
        // A server without tickets: the token in the URL, from now on.
        if (err instanceof ParleyError && err.status === 404) this.useTickets = false;
        else throw err;
      }
    }
    return `${this.wsUrl}?token=${encodeURIComponent(token)}`;
  }

  private async currentToken(): Promise<string> {
    const { getToken } = this.opts;
    const exp = this.token ? tokenExpiry(this.token) : undefined;
    const stale = this.token === undefined || this.forceToken || (exp !== undefined && exp * 1000 <= Date.now() + 5000);
    this.tokenWasForced = false;
    if (getToken && stale) {
      const force = this.forceToken;
      try {
        this.token = await getToken({ force });
      } catch (err) {
        // getToken itself was refused (a dead refresh token): no token will come, stop.
        if (err instanceof ParleyError && err.code === 'unauthorized') this.tokenWasForced = true;
        throw err;
      }
      this.forceToken = false;
      this.tokenWasForced = force;
    }
    return this.token!;
  }

  private onFrame(ws: WebSocketLike, raw: unknown): void {
    if (ws !== this.ws) return;
    this.lastFrameAt = Date.now();
    let f: { event: ServerEvent; data: Record<string, unknown> };
    try {
      f = JSON.parse(typeof raw === 'string' ? raw : String(raw));
    } catch {
      return;
    }
    this.opts.onFrame?.('in', f.event, f.data);
    const data = f.data ?? {};
    const ref = typeof data.ref === 'string' ? data.ref : undefined;
    // An answer to a request of ours? (Errors of sends may name only the clientMsgId.)
    const p = ref !== undefined ? this.pending.get(ref) : f.event === 'error' && typeof data.clientMsgId === 'string' ? this.pending.get(data.clientMsgId) : undefined;
    switch (f.event) {
      case 'session.ready':
        return this.onReady(data as unknown as SessionReady);
      case 'message.new':
        this.acceptLive((data as ServerEventMap['message.new']).message);
        break;
      case 'conversation.update':
        // An answer to our `read` is applied by markRead (after it resolves).
        if (!p) this.applyConversation((data as ServerEventMap['conversation.update']).conversation, 'update');
        break;
      case 'channel.joined':
        if (!p) this.applyConversation((data as ServerEventMap['channel.joined']).conversation, 'joined');
        break;
      case 'channel.left':
        if (!p) this.removeConversation((data as ServerEventMap['channel.left']).channelId);
        break;
      case 'presence.update':
        this.applyPresence(data as unknown as PresenceUpdate);
        break;
      case 'typing':
        this.emit('typing', data as unknown as TypingEvent);
        break;
      case 'member.joined':
      case 'member.left': {
        const d = data as { channelId: string; user: UserRef; by?: UserRef };
        this.emit('member', { type: f.event === 'member.joined' ? 'joined' : 'left', channelId: d.channelId, user: d.user, ...(d.by ? { by: d.by } : {}) });
        break;
      }
      case 'channel.updated':
        this.applyConversation((data as ServerEventMap['channel.updated']).conversation, 'update');
        break;
      case 'member.updated': {
        const d = data as ServerEventMap['member.updated'];
        this.emit('member', { type: 'updated', channelId: d.channelId, user: d.user, role: d.role, by: d.by });
        break;
      }
      case 'conversation.hidden': {
        // Hidden (a DM): off the list until its next message; still followed, so that message
        // and its conversation.update bring it back.
        const c = this.convs.get((data as ServerEventMap['conversation.hidden']).channelId);
        if (c) {
          this.convs.delete(c.channelId);
          this.emit('conversation', c, 'removed');
        }
        break;
      }
      case 'sync.result':
        this.onSyncResult(data as unknown as SyncResult);
        break;
      case 'error':
        if (!p) this.onStrayError(data as unknown as ErrorFrame);
        break;
      case 'message.updated':
        this.acceptUpdate((data as ServerEventMap['message.updated']).message);
        break;
    }
    if (p) this.settle(p, f.event, data);
  }

  private onReady(ready: SessionReady): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    const first = !this.hadSession;
    this.hadSession = true;
    this._user = ready.user;
    this.attempt = 0;
    this.heartbeatMs = ready.heartbeatIntervalMs;
    if (ready.conversations.some((c) => headRevOf(c) !== undefined)) this.v11 = true;
    const toSync: string[] = [];
    const seen = new Set<string>();
    for (const c of ready.conversations) {
      seen.add(c.channelId);
      let cur = this.cursors.get(c.channelId);
      if (!cur) {
        // Known at the start: the application pages back with history(). New since (the
        // client was away): handed out from the reader's marker, at least its last message.
        cur = first ? new Cursor(c.headSeq, headRevOf(c) ?? 0) : new Cursor(Math.max(0, Math.min(c.lastReadSeq, c.headSeq - 1)), 0);
        this.cursors.set(c.channelId, cur);
      }
      cur.syncing = false;
      this.convs.set(c.channelId, c);
      if (c.headSeq > cur.delivered || (this.v11 && (headRevOf(c) ?? 0) > cur.syncRev)) toSync.push(c.channelId);
    }
    for (const id of [...this.convs.keys()]) if (!seen.has(id)) this.removeConversation(id);
    this.setState({ state: 'ready' });
    for (const c of this.convs.values()) this.emit('conversation', c, 'updated');
    for (const w of this.connectWaiters.splice(0)) w.resolve();
    this.startHeartbeat();
    // What was not answered on the last connection, in the order it was asked.
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.timer = undefined;
      this.sendFrame(p.event, p.data as never);
    }
    this.requestSync(toSync);
  }

  private lost(ws: WebSocketLike, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.abandon(ws, 1000, 'bye');
    this.stopTimers();
    for (const cur of this.cursors.values()) cur.syncing = false;
    if (this._state === 'closed') return;
    if (code === 1001 || code === 1012) {
      // The server is going away or asks us to resume: at once (elsewhere, behind a balancer).
      this.attempt = 0;
      return this.scheduleReconnect(code, undefined, 0);
    }
    if (code === 1008 && !/abuse/i.test(reason)) {
      // Token expired or session ended: a fresh token (getToken), then at once.
      this.forceToken = true;
      this.attempt = 0;
      return this.scheduleReconnect(code, new ParleyError('unauthorized', reason || 'policy'), 0);
    }
    this.scheduleReconnect(code, new ParleyError('network', reason || `connection closed (${code})`));
  }

  private scheduleReconnect(closeCode?: number, error?: ParleyError, delay?: number): void {
    if (this._state === 'closed' || this.reconnectTimer) return;
    const delayMs = delay ?? this.backoffDelay(this.attempt);
    this.attempt++;
    this.setState({ state: 'reconnecting', attempt: this.attempt, delayMs, ...(closeCode !== undefined ? { closeCode } : {}), ...(error ? { error } : {}) });
    this.reconnectTimer = setTimeout(() => void this.open(), delayMs);
  }

  /** Full jitter: anywhere between 0 and min(max, base * 2^attempt). */
  private backoffDelay(attempt: number): number {
    const base = this.opts.backoff?.baseMs ?? 500;
    const max = this.opts.backoff?.maxMs ?? 30000;
    return Math.round(Math.random() * Math.min(max, base * 2 ** Math.min(attempt, 30)));
  }

  /** The server will not have us (a token refused, no way to get another): stop. */
  private fail(error: ParleyError): void {
    this.shutdown(error);
  }

  /**
   * Heartbeat: a `ping` every interval; a connection that has said nothing for two intervals
   * is dead (a dropped TCP connection says nothing at all) and is replaced.
   */
  private startHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const every = Math.max(250, Math.min(this.heartbeatMs, 30000));
    this.lastFrameAt = Date.now();
    this.heartbeat = setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      if (Date.now() - this.lastFrameAt > 2 * every + 1000) return this.lost(ws, 4000, 'heartbeat timeout');
      this.sendFrame('ping', {});
    }, every);
  }

  private stopTimers(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.heartbeat = this.connectTimer = this.reconnectTimer = null;
  }

  private abandon(ws: WebSocketLike, code: number, reason: string): void {
    ws.onmessage = ws.onclose = ws.onopen = null;
    ws.onerror = () => undefined;
    const terminate = (ws as { terminate?: () => void }).terminate;
    try {
      if (terminate && code !== 1000) terminate.call(ws);
      else if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, reason);
    } catch {
      // already gone
    }
  }

  private setState(change: StateChange): void {
    this._state = change.state;
    this.emit('state', change);
  }

  private onStrayError(e: ErrorFrame): void {
    const channelId = typeof e.details?.channelId === 'string' ? e.details.channelId : undefined;
    if (channelId && e.ref?.startsWith('s')) {
      // A sync of a channel we may no longer read: stop following it.
      if (e.code === 'forbidden' || e.code === 'not_found') this.removeConversation(channelId);
      else {
        const cur = this.cursors.get(channelId);
        if (cur) cur.syncing = false;
        setTimeout(() => this.requestSync([channelId]), this.backoffDelay(2));
      }
      return;
    }
    this.emit('error', new ParleyError(e.code, e.message, e.details, undefined, e.retryAfterMs));
  }

  // ---------------------------------------------------------------- resume and ordering

  private requestSync(channelIds: string[]): void {
    if (this._state !== 'ready') return;
    const channels: ClientEventMap['sync']['channels'] = {};
    let n = 0;
    const flush = () => {
      const limit = this.opts.syncPageSize;
      if (n > 0) this.sendFrame('sync', { channels: { ...channels }, ref: `s${++this.refCounter}`, ...(limit ? { limit } : {}) });
      for (const k of Object.keys(channels)) delete channels[k];
      n = 0;
    };
    for (const id of channelIds) {
      const cur = this.cursors.get(id);
      if (!cur || cur.syncing) continue;
      cur.syncing = true;
      channels[id] = this.v11 ? { seq: cur.delivered, rev: cur.syncRev } : cur.delivered;
      if (++n === 500) flush();
    }
    flush();
  }

  private onSyncResult(r: SyncResult): void {
    const cur = this.cursors.get(r.channelId);
    if (!cur) return;
    let maxRev = cur.syncRev;
    for (const m of r.messages) {
      this.accept(cur, m);
      maxRev = Math.max(maxRev, revOf(m));
    }
    for (const m of r.changes ?? []) {
      this.acceptUpdate(m);
      maxRev = Math.max(maxRev, revOf(m));
    }
    // The next page starts after the highest seq held and the highest rev seen in sync pages
    // (never a live frame's: a live frame says nothing of the changes before it).
    cur.syncRev = maxRev;
    cur.syncing = false;
    if (r.hasMore) return this.requestSync([r.channelId]);
    const headRev = headRevOf(r);
    if (headRev !== undefined) cur.syncRev = Math.max(cur.syncRev, headRev);
    // Still a gap ahead of what is pending (messages stored since the page was read): again,
    // at once when the page moved us on, after a pause when it did not (no busy loop).
    if (cur.pending.size > 0 || r.headSeq > cur.delivered) {
      if (r.messages.length > 0) this.requestSync([r.channelId]);
      else setTimeout(() => this.requestSync([r.channelId]), 1000);
    }
  }

  /** A message from a live frame, an ack or a change's answer. */
  private acceptLive(m: Message): void {
    let cur = this.cursors.get(m.channelId);
    if (!cur) {
      // A channel we did not know of (a new DM): from its beginning, filled by a sync.
      cur = new Cursor(0, 0);
      this.cursors.set(m.channelId, cur);
    }
    this.accept(cur, m);
  }

  private accept(cur: Cursor, m: Message): void {
    if (m.rev !== undefined) this.v11 = true;
    if (m.seq <= cur.delivered) {
      // Already handed out; a newer state of it (sync pages carry current state) is an update.
      if (revOf(m) > (cur.revs.get(m.seq) ?? revOf(m))) this.acceptUpdate(m);
      return;
    }
    if (m.seq === cur.delivered + 1) {
      this.deliver(cur, m);
      for (let next = cur.pending.get(cur.delivered + 1); next; next = cur.pending.get(cur.delivered + 1)) {
        cur.pending.delete(next.seq);
        this.deliver(cur, next);
      }
      return;
    }
    const held = cur.pending.get(m.seq);
    if (!held || revOf(m) > revOf(held)) cur.pending.set(m.seq, m);
    if (!cur.syncing) this.requestSync([m.channelId]);
  }

  private deliver(cur: Cursor, m: Message): void {
    cur.delivered = m.seq;
    cur.noteRev(m.seq, revOf(m));
    const c = this.convs.get(m.channelId);
    if (c && m.seq > c.headSeq) {
      // Kept up locally until the server's own conversation.update (throttled) says it exactly.
      const mine = m.sender?.id === this._user?.id;
      const mentionsMe = !mine && (m.mentions ?? []).some((u) => u.id === this._user?.id);
      const next = {
        ...c,
        headSeq: m.seq,
        ...(m.rev !== undefined && m.rev > (c.headRev ?? 0) ? { headRev: m.rev } : {}),
        lastMessage: m,
        lastReadSeq: mine ? m.seq : c.lastReadSeq,
        unreadCount: mine ? 0 : c.unreadCount + 1,
        ...(c.mentionCount !== undefined ? { mentionCount: mine ? 0 : c.mentionCount + (mentionsMe ? 1 : 0) } : {}),
      };
      this.convs.set(m.channelId, next);
      this.emit('conversation', next, 'updated');
    }
    this.emit('message', m);
  }

  private acceptUpdate(m: Message): void {
    this.v11 = true;
    const cur = this.cursors.get(m.channelId);
    if (!cur) return;
    if (m.seq > cur.delivered) {
      // Not handed out yet: the update is the message's current state; it waits its turn.
      return this.accept(cur, m);
    }
    const known = cur.revs.get(m.seq);
    if (known !== undefined && revOf(m) <= known) return;
    cur.noteRev(m.seq, revOf(m));
    const c = this.convs.get(m.channelId);
    if (c?.lastMessage && c.lastMessage.seq === m.seq) {
      const next = { ...c, lastMessage: m, ...(m.rev > (c.headRev ?? 0) ? { headRev: m.rev } : {}) };
      this.convs.set(m.channelId, next);
      this.emit('conversation', next, 'updated');
    }
    this.emit('messageUpdated', m);
  }

  // ---------------------------------------------------------------- the conversation list

  private applyConversation(c: Conversation, how: 'update' | 'joined'): void {
    if (c.headRev !== undefined) this.v11 = true;
    const existing = this.convs.get(c.channelId);
    if (!this.cursors.has(c.channelId)) {
      // Joined here: from now on (history() pages back). Appeared otherwise (a new DM, an
      // invitation, a join on another device): from the reader's marker.
      const from = how === 'joined' ? c.headSeq : Math.max(0, Math.min(c.lastReadSeq, c.headSeq - 1));
      this.cursors.set(c.channelId, new Cursor(from, how === 'joined' ? (headRevOf(c) ?? 0) : 0));
      if (c.headSeq > from) this.requestSync([c.channelId]);
    }
    // An update built before a message we already applied must not take the list back.
    const merged = existing && existing.headSeq > c.headSeq ? { ...c, headSeq: existing.headSeq, lastMessage: existing.lastMessage } : c;
    this.convs.set(c.channelId, merged);
    this.emit('conversation', merged, 'updated');
  }

  private removeConversation(channelId: string): void {
    this.cursors.delete(channelId);
    const c = this.convs.get(channelId);
    if (!c) return;
    this.convs.delete(channelId);
    this.emit('conversation', c, 'removed');
  }

  private applyPresence(u: PresenceUpdate): void {
    for (const c of this.convs.values()) {
      if (c.peer?.id === u.user.id && c.peer.status !== u.status) {
        const next = { ...c, peer: { ...c.peer, status: u.status } };
        this.convs.set(c.channelId, next);
        this.emit('conversation', next, 'updated');
      }
    }
    this.emit('presence', u);
  }
}
