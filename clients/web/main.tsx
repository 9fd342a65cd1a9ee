/**
 * Parley's web client (served at `/`). Preact for the view (3 kB of runtime, hooks, JSX through
 * esbuild), the SDK underneath. Every control has a visible or aria label; everything works from
 * the keyboard; one column on a phone (list or chat), two on a wider screen.
 */
import { render } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { login, register } from '../../sdk/src/index.js';
import type { UserRef } from '../../sdk/src/index.js';
import { ChatConversation, ChatMessage, explain, OutgoingMessage, Store } from './store.js';

const store = new Store();
const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

function useStore(): Store {
  const [, setVersion] = useState(0);
  useEffect(() => store.subscribe(() => setVersion((n) => n + 1)), []);
  return store;
}

function App() {
  const s = useStore();
  return s.client ? <Main /> : <Login />;
}

function Login() {
  const s = useStore();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [server, setServer] = useState(s.api);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(s.notice);

  const submit = async (mode: 'login' | 'register') => {
    setBusy(true);
    setError(null);
    s.api = server.replace(/\/+$/, '');
    localStorage.setItem('parley.api', s.api);
    try {
      const auth = mode === 'login' ? await login(s.api, { username, password }) : await register(s.api, { username, password });
      s.notice = null;
      s.start(auth);
    } catch (err) {
      setError(explain(err));
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <h1>Parley</h1>
      <form
        aria-label="Log in or sign up"
        onSubmit={(e) => {
          e.preventDefault();
          void submit('login');
        }}
      >
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <details>
          <summary>Server</summary>
          <label for="server">Server address</label>
          <input id="server" type="url" value={server} onInput={(e) => setServer(e.currentTarget.value)} />
        </details>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <div class="row">
          <button type="submit" disabled={busy}>
            Log in
          </button>
          <button type="button" disabled={busy} onClick={() => void submit('register')}>
            Sign up
          </button>
        </div>
        <p class="hint">Sign up: 3–32 letters, digits, _ . or -; a password of 8 characters or more.</p>
      </form>
    </main>
  );
}

function Main() {
  const s = useStore();
  const banner = s.connection !== 'ready' && s.connection !== 'idle' ? (s.wasReady ? 'Reconnecting…' : 'Connecting…') : null;
  return (
    <div class="shell" data-view={s.currentId ? 'chat' : 'list'}>
      {banner && (
        <div role="status" class="banner">
          {banner}
        </div>
      )}
      {s.notice && (
        <div role="alert" class="notice">
          {s.notice}{' '}
          <button type="button" onClick={() => ((s.notice = null), s.changed())}>
            Dismiss
          </button>
        </div>
      )}
      <Sidebar />
      <Chat />
    </div>
  );
}

function Sidebar() {
  const s = useStore();
  return (
    <aside class="sidebar" aria-label="Conversations">
      <header class="me">
        <span>
          Signed in as <strong>{s.me?.username}</strong>
        </span>
        <div class="row">
          {'Notification' in window && Notification.permission === 'default' && (
            <button type="button" onClick={() => void Notification.requestPermission().then(() => s.changed())}>
              Enable notifications
            </button>
          )}
          <button type="button" onClick={() => s.logout()}>
            Log out
          </button>
        </div>
      </header>
      <NewDm />
      <JoinChannel />
      <Search />
      <h2 class="visually-hidden">Conversations</h2>
      <ul class="conversations" aria-label="Conversation list">
        {s.conversations.length === 0 && <li class="empty">No conversations yet: message someone or join a channel.</li>}
        {s.conversations.map((c) => (
          <ConversationItem key={c.channelId} c={c} />
        ))}
      </ul>
    </aside>
  );
}

function ConversationItem({ c }: { c: ChatConversation }) {
  const s = useStore();
  const title = c.kind === 'dm' ? c.name : `#${c.name}`;
  const last = c.lastMessage as ChatMessage | null;
  const preview = last ? `${last.sender?.username ?? 'system'}: ${last.deleted ? 'message deleted' : last.text}` : 'No messages yet';
  const label = [title, c.peer ? c.peer.status : '', c.unreadCount ? `${c.unreadCount} unread` : '', c.mentionCount ? `${c.mentionCount} mentions` : '', c.muted ? 'muted' : ''].filter(Boolean).join(', ');
  return (
    <li>
      <button type="button" class="conversation" aria-current={s.currentId === c.channelId ? 'true' : undefined} aria-label={label} onClick={() => void s.open(c.channelId)}>
        {c.peer && <span class={`dot ${c.peer.status}`} title={c.peer.status} />}
        <span class="title">
          {title}
          {c.muted && <span class="muted-mark" title="muted"> 🔕</span>}
        </span>
        <span class="preview">{preview}</span>
        {c.unreadCount > 0 && (
          <span class="badge unread" data-testid="unread">
            {c.unreadCount}
          </span>
        )}
        {(c.mentionCount ?? 0) > 0 && <span class="badge mention">@{c.mentionCount}</span>}
      </button>
    </li>
  );
}

/** A new DM by username, with a debounced user search. */
function NewDm() {
  const s = useStore();
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<UserRef[]>([]);
  useEffect(() => {
    const q = query.trim();
    if (q.length < 1) return setFound([]);
    const timer = setTimeout(() => {
      s.client
        ?.searchUsers(q)
        .then((users) => setFound(users.filter((u) => u.id !== s.me?.id).slice(0, 8)))
        .catch(() => setFound([]));
    }, 250);
    return () => clearTimeout(timer);
  }, [query]);
  const start = (username: string) =>
    s.run(async () => {
      const { channelId } = await s.client!.api<{ channelId: string }>('POST', '/dms', { username });
      setQuery('');
      setFound([]);
      await s.open(channelId);
    });
  return (
    <section class="tool">
      <label for="find-user">Find a user</label>
      <input id="find-user" type="search" autocomplete="off" placeholder="username" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
      {found.length > 0 && (
        <ul class="results" aria-label="Users found">
          {found.map((u) => (
            <li key={u.id}>
              <button type="button" onClick={() => void start(u.username)}>
                Message {u.username}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function JoinChannel() {
  const s = useStore();
  const [name, setName] = useState('');
  return (
    <form
      class="tool"
      onSubmit={(e) => {
        e.preventDefault();
        void s.run(async () => {
          const c = await s.client!.join({ name: name.trim().replace(/^#/, '') });
          setName('');
          await s.open(c.channelId);
        });
      }}
    >
      <label for="channel-name">Channel name</label>
      <div class="row">
        <input id="channel-name" required pattern="#?[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit">Join</button>
      </div>
    </form>
  );
}

function Search() {
  const s = useStore();
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<ChatMessage[] | null>(null);
  return (
    <form
      class="tool"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        void s.run(async () => setHits((await s.client!.searchMessages(q.trim(), { limit: 20 })).hits.map((h) => h.message)));
      }}
    >
      <label for="search">Search messages</label>
      <div class="row">
        <input id="search" type="search" required value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        <button type="submit">Search</button>
      </div>
      {hits && (
        <ul class="results" aria-label="Search results">
          {hits.length === 0 && <li class="empty">Nothing found.</li>}
          {hits.map((m) => {
            const c = s.client?.conversation(m.channelId);
            return (
              <li key={`${m.channelId}:${m.seq}`}>
                <button type="button" onClick={() => void s.open(m.channelId, m.seq).then(() => setHits(null))}>
                  <span class="where">{c ? (c.kind === 'dm' ? c.name : `#${c.name}`) : ''}</span> {m.sender?.username}: {m.text}
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </form>
  );
}

function Chat() {
  const s = useStore();
  const c = s.current;
  const list = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const view = c ? s.chat(c.channelId) : null;
  const messages = view ? [...view.messages.values()].sort((a, b) => a.seq - b.seq) : [];
  const lastSeq = messages.at(-1)?.seq ?? 0;

  // Follow new messages while the reader is at the bottom; a search hit is scrolled into view.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    if (s.focusSeq !== null) el.querySelector(`[data-seq="${s.focusSeq}"]`)?.scrollIntoView({ block: 'center' });
    else if (atBottom.current) el.scrollTop = el.scrollHeight;
  }, [lastSeq, c?.channelId, view?.outgoing.length, s.focusSeq]);

  if (!c || !view) {
    return (
      <main class="chat empty-chat">
        <p>Pick a conversation, find a user, or join a channel.</p>
      </main>
    );
  }
  const title = c.kind === 'dm' ? c.name : `#${c.name}`;
  const typing = s.typingIn(c.channelId);
  return (
    <main class="chat" aria-label={`Conversation ${title}`}>
      <header class="chat-header">
        <button type="button" class="back" onClick={() => ((s.currentId = null), s.changed())}>
          Back to conversations
        </button>
        <h2>
          {c.peer && <span class={`dot ${c.peer.status}`} />}
          {title}
        </h2>
        {c.peer && <span class="status">{c.peer.status}</span>}
        {/* Muting stops the mobile-push webhook for this conversation; the server confirms with a conversation.update. */}
        <button type="button" class="mute" aria-pressed={c.muted ? 'true' : 'false'} onClick={() => void s.run(() => s.client!.mute(c.channelId, !c.muted))}>
          {c.muted ? 'Unmute' : 'Mute'}
        </button>
      </header>
      <div
        class="messages"
        role="log"
        aria-label="Messages"
        ref={list}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          if (el.scrollTop < 20 && view.hasMore && !view.loading) void s.loadEarlier(c.channelId);
        }}
      >
        <ol>
        {view.hasMore && view.loaded && (
          <li class="more">
            <button type="button" disabled={view.loading} onClick={() => void s.loadEarlier(c.channelId)}>
              {view.loading ? 'Loading…' : 'Load earlier messages'}
            </button>
          </li>
        )}
        {messages.map((m) => [
          m.seq === view.unreadFrom && (
            <li key={`new-${m.seq}`} class="divider" role="separator">
              New messages
            </li>
          ),
          <MessageItem key={m.seq} m={m} channel={c} />,
        ])}
        {view.outgoing.map((o) => (
          <Outgoing key={o.clientMsgId} o={o} />
        ))}
        </ol>
      </div>
      <p class="typing" aria-live="polite">
        {typing.length > 0 ? `${typing.join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…` : ''}
      </p>
      <Composer channel={c} />
    </main>
  );
}

function MessageItem({ m, channel }: { m: ChatMessage; channel: ChatConversation }) {
  const s = useStore();
  const [picking, setPicking] = useState(false);
  const mine = m.sender?.id === s.me?.id;
  const v11 = s.client?.supportsRevisions ?? false;
  const mentioned = m.mentions?.some((u) => u.id === s.me?.id);
  const time = new Date(m.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const react = (emoji: string, remove: boolean) => s.run(() => s.client!.react(channel.channelId, m.seq, emoji, { remove }));
  return (
    <li class={`message${mine ? ' mine' : ''}${mentioned ? ' mentioned' : ''}${s.focusSeq === m.seq ? ' focused' : ''}`} data-seq={m.seq} aria-label={`${m.sender?.username ?? 'system'} at ${time}`}>
      <div class="meta">
        <span class="sender">{m.sender?.username ?? 'system'}</span> <time dateTime={m.createdAt}>{time}</time>
        {m.editedAt && !m.deleted && <span class="edited"> (edited)</span>}
      </div>
      {m.replyTo && (
        <blockquote class="reply-quote">
          <span class="sender">{m.replyTo.sender?.username ?? 'system'}</span>: {m.replyTo.deleted ? <em>message deleted</em> : m.replyTo.text}
        </blockquote>
      )}
      <p class={`text${m.deleted ? ' deleted' : ''}`}>{m.deleted ? 'message deleted' : m.text}</p>
      {!m.deleted && (m.reactions?.length ?? 0) > 0 && (
        <div class="reactions">
          {m.reactions!.map((r) => {
            const own = r.userIds.includes(s.me?.id ?? '');
            return (
              <button type="button" key={r.emoji} class="reaction" aria-pressed={own} aria-label={`${r.emoji} ${r.count}${own ? ', yours: remove' : ': add yours'}`} onClick={() => void react(r.emoji, own)}>
                {r.emoji} {r.count}
              </button>
            );
          })}
        </div>
      )}
      {v11 && !m.deleted && (
        <div class="actions">
          <button type="button" aria-label={`Reply to ${m.sender?.username ?? 'system'}`} onClick={() => ((s.replyTo = m), (s.editing = null), s.changed(), focusComposer())}>
            Reply
          </button>
          <button type="button" aria-expanded={picking} aria-label="React" onClick={() => setPicking(!picking)}>
            React
          </button>
          {mine && (
            <button type="button" aria-label="Edit" onClick={() => ((s.editing = m), (s.replyTo = null), s.changed(), focusComposer(m.text))}>
              Edit
            </button>
          )}
          {(mine || channelAdmin(channel)) && (
            <button type="button" aria-label="Delete" onClick={() => void s.run(() => s.client!.delete(channel.channelId, m.seq))}>
              Delete
            </button>
          )}
          {picking && (
            <span class="picker" role="group" aria-label="Pick a reaction">
              {EMOJI.map((e) => (
                <button
                  type="button"
                  key={e}
                  aria-label={`React with ${e}`}
                  onClick={() => {
                    setPicking(false);
                    void react(e, false);
                  }}
                >
                  {e}
                </button>
              ))}
            </span>
          )}
        </div>
      )}
    </li>
  );
}

/** Owners and admins may delete anyone's message (servers that send `role`). */
const channelAdmin = (c: ChatConversation) => ['owner', 'admin'].includes((c as { role?: string }).role ?? '');

function Outgoing({ o }: { o: OutgoingMessage }) {
  const s = useStore();
  return (
    <li class={`message mine outgoing ${o.status}`} aria-label={o.status === 'sending' ? 'Sending' : 'Not sent'}>
      <p class="text">{o.text}</p>
      {o.status === 'sending' ? (
        <span class="state">Sending…</span>
      ) : (
        <span class="state">
          Not sent: {o.error}{' '}
          <button type="button" onClick={() => s.retry(o)}>
            Retry
          </button>{' '}
          <button type="button" onClick={() => s.discard(o)}>
            Discard
          </button>
        </span>
      )}
    </li>
  );
}

let composerText: ((t: string) => void) | null = null;
function focusComposer(text?: string) {
  if (text !== undefined) composerText?.(text);
  document.getElementById('composer')?.focus(); // always there while a conversation is open
}

function Composer({ channel }: { channel: ChatConversation }) {
  const s = useStore();
  const [text, setText] = useState('');
  const lastTyping = useRef(0);
  composerText = setText;
  // Another conversation: an empty composer (not at mount: what was typed at once must stay).
  const shownFor = useRef(channel.channelId);
  useEffect(() => {
    if (shownFor.current === channel.channelId) return;
    shownFor.current = channel.channelId;
    setText('');
  }, [channel.channelId]);
  const editing = s.editing;
  const cancel = () => {
    if (s.editing) setText('');
    s.replyTo = s.editing = null;
    s.changed();
  };
  // Escape cancels a reply or an edit wherever the focus is.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && (s.replyTo || s.editing)) cancel();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  });
  const submit = () => {
    const body = text.trim();
    if (!body) return;
    if (editing) {
      void s.run(() => s.client!.edit(channel.channelId, editing.seq, body));
      s.editing = null;
    } else {
      s.send(channel.channelId, body, s.replyTo?.seq);
      s.replyTo = null;
    }
    setText('');
    s.changed();
  };
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      {s.replyTo && (
        <div class="context">
          Replying to <strong>{s.replyTo.sender?.username}</strong>: {s.replyTo.text.slice(0, 80)}{' '}
          <button type="button" onClick={cancel}>
            Cancel reply
          </button>
        </div>
      )}
      {editing && (
        <div class="context">
          Editing your message{' '}
          <button type="button" onClick={cancel}>
            Cancel edit
          </button>
        </div>
      )}
      <label for="composer" class="visually-hidden">
        {editing ? 'Edit message' : 'Message'}
      </label>
      <div class="row">
        <textarea
          id="composer"
          rows={1}
          placeholder={editing ? 'Edit your message' : `Message ${channel.kind === 'dm' ? channel.name : `#${channel.name}`}`}
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value);
            if (Date.now() - lastTyping.current > 2000) {
              lastTyping.current = Date.now();
              s.client?.typing(channel.channelId);
            }
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              submit();
            }
          }}
        />
        <button type="submit">{editing ? 'Save' : 'Send'}</button>
      </div>
    </form>
  );
}

store.resumeSaved();
const root = document.getElementById('app')!;
root.textContent = ''; // the "Loading…" placeholder
render(<App />, root);
