/**
 * The web client's state, around one ParleyClient: the SDK does the hard parts (reconnect,
 * resume, ordering, exactly-once); this keeps what the page shows — per conversation the loaded
 * messages (by seq) and the optimistic sends not stored yet — and tells the view to re-render.
 */
import { newClientMsgId, ParleyClient, ParleyError, refreshingToken } from '../../sdk/src/index.js';
import type { AuthResult, ConnectionState, Conversation, Message, UserRef } from '../../sdk/src/index.js';

/** Messages and conversations as the server sends them (protocol v1.1 fields included). */
export type ChatMessage = Message;
export type ChatConversation = Conversation;

export interface OutgoingMessage {
  clientMsgId: string;
  channelId: string;
  text: string;
  replyToSeq?: number;
  status: 'sending' | 'failed';
  error?: string;
}

export interface ChatView {
  messages: Map<number, ChatMessage>;
  /** Older messages exist before the first loaded one. */
  hasMore: boolean;
  loaded: boolean;
  loading: boolean;
  outgoing: OutgoingMessage[];
  /** The first message that was unread when the conversation was opened (the "New messages" line). */
  unreadFrom: number | null;
}

const SESSION_KEY = 'parley.session';
const API_KEY = 'parley.api';
/** The sends not stored yet, per user: kept across a reload or a browser restart (see Store.saveOutbox). */
const outboxKey = (userId: string) => `parley.outbox.${userId}`;

/** The API's base URL: `?api=`, then the last one used, then the page's meta tag, then this origin. */
export function apiBase(): string {
  const fromQuery = new URLSearchParams(location.search).get('api');
  if (fromQuery) {
    localStorage.setItem(API_KEY, fromQuery);
    return fromQuery.replace(/\/+$/, '');
  }
  const meta = document.querySelector<HTMLMetaElement>('meta[name="parley-api"]')?.content;
  return (localStorage.getItem(API_KEY) || meta || location.origin).replace(/\/+$/, '');
}

interface SavedSession {
  api: string;
  auth: AuthResult;
}

export class Store {
  client: ParleyClient | null = null;
  me: UserRef | null = null;
  api = apiBase();
  connection: ConnectionState = 'idle';
  /** True once a session was ready: later non-ready states show the reconnecting banner. */
  wasReady = false;
  conversations: ChatConversation[] = [];
  currentId: string | null = null;
  readonly chats = new Map<string, ChatView>();
  /** channelId → username → until (ms). */
  readonly typing = new Map<string, Map<string, number>>();
  replyTo: ChatMessage | null = null;
  editing: ChatMessage | null = null;
  /** A seq to scroll to and highlight (from search). */
  focusSeq: number | null = null;
  notice: string | null = null;
  private readonly listeners = new Set<() => void>();
  private scheduled = false;
  /** Sends this page saw stored or discarded: another tab's saved outbox may still list them. */
  private readonly finished = new Set<string>();

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-render once per frame at most, however many events came. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const l of this.listeners) l();
    });
  }

  get current(): ChatConversation | undefined {
    return this.conversations.find((c) => c.channelId === this.currentId);
  }

  chat(channelId: string): ChatView {
    let view = this.chats.get(channelId);
    if (!view) this.chats.set(channelId, (view = { messages: new Map(), hasMore: true, loaded: false, loading: false, outgoing: [], unreadFrom: null }));
    return view;
  }

  resumeSaved(): boolean {
    const raw = localStorage.getItem(SESSION_KEY);
    if (!raw) return false;
    try {
      const saved = JSON.parse(raw) as SavedSession;
      if (saved.api !== this.api) return false;
      this.start(saved.auth);
      return true;
    } catch {
      localStorage.removeItem(SESSION_KEY);
      return false;
    }
  }

  start(auth: AuthResult): void {
    this.me = auth.user;
    const save = (a: AuthResult) => localStorage.setItem(SESSION_KEY, JSON.stringify({ api: this.api, auth: a } satisfies SavedSession));
    save(auth);
    const client = new ParleyClient({ url: this.api, getToken: refreshingToken(this.api, auth, { onRefresh: save }) });
    this.client = client;
    client.on('state', (s) => {
      this.connection = s.state;
      if (s.state === 'ready') this.wasReady = true;
      if (s.state === 'closed' && s.error?.code === 'unauthorized') this.logout('Your session ended: log in again.');
      this.changed();
    });
    client.on('conversation', () => {
      this.conversations = client.conversations as ChatConversation[];
      this.markCurrentRead();
      this.changed();
    });
    client.on('message', (m) => this.onMessage(m));
    client.on('messageUpdated', (m) => {
      const view = this.chats.get(m.channelId);
      if (view?.messages.has(m.seq)) view.messages.set(m.seq, m);
      this.changed();
    });
    client.on('typing', (t) => {
      if (t.user.id === this.me?.id) return;
      let who = this.typing.get(t.channelId);
      if (!who) this.typing.set(t.channelId, (who = new Map()));
      who.set(t.user.username, Date.now() + 4000);
      this.changed();
      setTimeout(() => this.changed(), 4100);
    });
    client.connect().catch(() => undefined); // failures show through 'state'
    document.addEventListener('visibilitychange', () => this.markCurrentRead());
    this.restoreOutbox();
    this.changed();
  }

  /**
   * The sends a reload or a closed browser left unanswered, sent again with their clientMsgId:
   * one the server stored already (its ack was lost) comes back as the stored message, not as a
   * second one. One the server refused stays shown as failed, to retry or discard.
   */
  private restoreOutbox(): void {
    for (const o of this.loadOutbox()) {
      if (o.status === 'failed') {
        const view = this.chat(o.channelId);
        if (!view.outgoing.some((x) => x.clientMsgId === o.clientMsgId)) view.outgoing.push(o);
      } else this.send(o.channelId, o.text, o.replyToSeq, o.clientMsgId);
    }
  }

  private loadOutbox(): OutgoingMessage[] {
    if (!this.me) return [];
    try {
      const saved = JSON.parse(localStorage.getItem(outboxKey(this.me.id)) ?? '[]') as OutgoingMessage[];
      return Array.isArray(saved) ? saved.filter((o) => typeof o?.clientMsgId === 'string' && typeof o.channelId === 'string' && typeof o.text === 'string') : [];
    } catch {
      return [];
    }
  }

  /**
   * Writes the unanswered sends to localStorage. Other tabs of the same user write there too, so
   * the saved list is merged, not replaced: theirs are kept unless this page saw them finish (a
   * send resent by two tabs is still stored once: the server knows its clientMsgId).
   */
  private saveOutbox(): void {
    if (!this.me || !this.client) return; // logged out: what the closed client rejects is not saved back
    const mine = [...this.chats.values()].flatMap((v) => v.outgoing);
    const ids = new Set(mine.map((o) => o.clientMsgId));
    const others = this.loadOutbox().filter((o) => !ids.has(o.clientMsgId) && !this.finished.has(o.clientMsgId));
    const all = [...others, ...mine].map(({ clientMsgId, channelId, text, replyToSeq, status, error }) => ({ clientMsgId, channelId, text, replyToSeq, status, error }));
    try {
      if (all.length) localStorage.setItem(outboxKey(this.me.id), JSON.stringify(all));
      else localStorage.removeItem(outboxKey(this.me.id));
    } catch {
      // Storage full or refused (private mode): the sends still go out, they just do not outlive the page.
    }
  }

  logout(notice?: string): void {
    const client = this.client;
    this.client = null;
    if (client && !notice) void client.api('POST', '/auth/logout').catch(() => undefined).finally(() => client.close());
    else client?.close();
    localStorage.removeItem(SESSION_KEY);
    // Logging out gives up what was not sent: the next user of this browser must not send it.
    if (this.me) localStorage.removeItem(outboxKey(this.me.id));
    this.conversations = [];
    this.chats.clear();
    this.currentId = null;
    this.wasReady = false;
    this.notice = notice ?? null;
    this.changed();
  }

  private onMessage(m: ChatMessage): void {
    const view = this.chat(m.channelId);
    view.messages.set(m.seq, m);
    if (view.outgoing.some((o) => o.clientMsgId === m.clientMsgId)) {
      view.outgoing = view.outgoing.filter((o) => o.clientMsgId !== m.clientMsgId);
      this.finished.add(m.clientMsgId);
      this.saveOutbox();
    }
    const who = this.typing.get(m.channelId);
    if (m.sender) who?.delete(m.sender.username);
    if (m.sender && m.sender.id !== this.me?.id && document.hidden && 'Notification' in window && Notification.permission === 'granted') {
      const c = this.client?.conversation(m.channelId);
      new Notification(c?.kind === 'dm' ? m.sender.username : `${m.sender.username} in #${c?.name ?? ''}`, { body: m.text, tag: m.channelId });
    }
    this.changed();
  }

  async open(channelId: string, focusSeq?: number): Promise<void> {
    this.currentId = channelId;
    this.replyTo = this.editing = null;
    this.focusSeq = focusSeq ?? null;
    const view = this.chat(channelId);
    const c = this.client?.conversation(channelId);
    view.unreadFrom = c && c.unreadCount > 0 ? c.lastReadSeq + 1 : null;
    this.changed();
    if (!view.loaded) await this.loadEarlier(channelId);
    // From search: page back until the hit is loaded (a few pages at most).
    for (let i = 0; focusSeq !== undefined && i < 10 && view.hasMore && !view.messages.has(focusSeq); i++) await this.loadEarlier(channelId);
    this.markCurrentRead();
  }

  /** Scroll-back: the page before the oldest loaded message. */
  async loadEarlier(channelId: string): Promise<void> {
    const view = this.chat(channelId);
    if (view.loading || !this.client) return;
    view.loading = true;
    this.changed();
    try {
      const oldest = Math.min(...view.messages.keys());
      const page = await this.client.history(channelId, { limit: 50, ...(Number.isFinite(oldest) ? { beforeSeq: oldest } : {}) });
      for (const m of page.messages) if (!view.messages.has(m.seq)) view.messages.set(m.seq, m);
      view.hasMore = page.hasMore;
      view.loaded = true;
    } catch (err) {
      this.notice = explain(err);
    } finally {
      view.loading = false;
      this.changed();
    }
  }

  markCurrentRead(): void {
    const c = this.current;
    if (!c || !this.client || document.hidden || c.headSeq <= c.lastReadSeq) return;
    this.client.markRead(c.channelId, c.headSeq).catch(() => undefined);
  }

  /** An optimistic send: shown at once as `sending`, replaced by the stored message. */
  send(channelId: string, text: string, replyToSeq?: number, clientMsgId = newClientMsgId()): void {
    const view = this.chat(channelId);
    const existing = view.outgoing.find((o) => o.clientMsgId === clientMsgId);
    if (existing) {
      existing.status = 'sending';
      existing.error = undefined;
    } else view.outgoing.push({ clientMsgId, channelId, text, replyToSeq, status: 'sending' });
    this.saveOutbox(); // before it goes out: a reload from here on finds it
    this.changed();
    this.client!.send({ channelId, text, clientMsgId, ...(replyToSeq !== undefined ? { replyToSeq } : {}) }).then(
      (m) => this.onMessage(m),
      (err) => {
        const o = view.outgoing.find((x) => x.clientMsgId === clientMsgId);
        if (o) {
          o.status = 'failed';
          o.error = explain(err);
          this.saveOutbox();
        }
        this.changed();
      },
    );
  }

  /** Retry keeps the clientMsgId: if the first try was stored after all, nothing doubles. */
  retry(o: OutgoingMessage): void {
    this.send(o.channelId, o.text, o.replyToSeq, o.clientMsgId);
  }

  discard(o: OutgoingMessage): void {
    const view = this.chat(o.channelId);
    view.outgoing = view.outgoing.filter((x) => x !== o);
    this.finished.add(o.clientMsgId);
    this.saveOutbox();
    this.changed();
  }

  async run(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      this.notice = null;
    } catch (err) {
      this.notice = explain(err);
    }
    this.changed();
  }

  typingIn(channelId: string): string[] {
    const who = this.typing.get(channelId);
    if (!who) return [];
    const now = Date.now();
    return [...who].filter(([, until]) => until > now).map(([name]) => name);
  }
}

export function explain(err: unknown): string {
  if (err instanceof ParleyError) {
    if (err.code === 'unauthorized') return 'Wrong username or password.';
    if (err.code === 'network') return `Cannot reach the server (${err.message}).`;
    return `${err.message} (${err.code})`;
  }
  return (err as Error)?.message ?? String(err);
}
