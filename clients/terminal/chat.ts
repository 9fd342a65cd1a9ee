/**
 * Parley's terminal client, on @parley/client:
 *
 *   npm run chat -- --url http://localhost:3000 --user alice [--register]
 *
 * Asks for the password (or reads it as the first line of stdin when that is not a terminal, or
 * from PARLEY_PASSWORD). Lines you type go to the current conversation; commands start with `/`
 * (see HELP). Every line it prints is one of: `[#room] user: text` (a message), `* …` (a system
 * line: joins, leaves, presence, connection state) or `! code: message` (an error). Lines not
 * stored yet wait in a file (Outbox, below) and are sent at the next start if the program ends first.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface, Interface } from 'node:readline';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { login, newClientMsgId, ParleyClient, ParleyError, refreshingToken, register } from '../../sdk/src/index.js';
import type { Conversation, Message, WebSocketConstructor } from '../../sdk/src/index.js';

const HELP = `commands:
  /list                 conversations, with unread counts
  /join <channel>       join (or create) a public channel and talk there
  /dm <user>            talk to a user (direct message)
  /open <name>          talk in a conversation from /list (#room or user)
  /leave                leave the current channel
  /who                  who is online among your contacts, and the current conversation's peer
  /history [n]          the n messages before the oldest shown here (default 20)
  /quit                 leave the program
anything else is sent to the current conversation`;

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:3000' },
    user: { type: 'string' },
    register: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const system = (line: string) => out(`* ${line}`);
const problem = (err: unknown) =>
  out(err instanceof ParleyError ? `! ${err.code}: ${err.message}` : `! error: ${(err as Error)?.message ?? String(err)}`);

if (args.help || !args.user) {
  out('usage: npm run chat -- --url http://localhost:3000 --user alice [--register]');
  out(HELP);
  process.exit(args.help ? 0 : 2);
}

const rl: Interface = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
// Lines typed (or piped) before anyone asks for them wait here, in order.
let onLine: ((line: string) => void) | null = null;
const early: string[] = [];
rl.on('line', (line) => (onLine ? onLine(line) : early.push(line)));
const nextLine = (): Promise<string> =>
  early.length > 0
    ? Promise.resolve(early.shift()!)
    : new Promise((resolve) => {
        onLine = (line) => {
          onLine = null;
          resolve(line);
        };
      });

/** The password: PARLEY_PASSWORD, the first stdin line (not a terminal), or asked without echo. */
function askPassword(): Promise<string> {
  if (process.env.PARLEY_PASSWORD) return Promise.resolve(process.env.PARLEY_PASSWORD);
  return new Promise((resolve) => {
    if (process.stdin.isTTY) {
      process.stdout.write('password: ');
      const muted = rl as unknown as { _writeToOutput: (s: string) => void };
      const write = muted._writeToOutput;
      muted._writeToOutput = () => undefined;
      void nextLine().then((line) => {
        muted._writeToOutput = write;
        process.stdout.write('\n');
        resolve(line);
      });
    } else void nextLine().then(resolve);
  });
}

interface Unsent {
  clientMsgId: string;
  channelId: string;
  text: string;
}

/**
 * The lines sent but not stored yet, in a file, so that they outlive the program (/quit or Ctrl-C
 * while the server is away, a closed terminal, a crash): the next start sends them again with
 * their clientMsgId, and the server stores each once, also one it had stored before its ack was
 * lost. One file per server and user, in PARLEY_STATE_DIR or ~/.parley, readable by you only;
 * removed when empty. Two programs of the same user share it: each keeps the other's lines.
 */
class Outbox {
  private readonly file: string;
  private entries: Unsent[];
  /** The lines this program took on (found at start, or typed here), finished ones included. */
  private readonly mine = new Set<string>();

  constructor(url: string, userId: string) {
    const dir = process.env.PARLEY_STATE_DIR || join(homedir(), '.parley');
    const server = createHash('sha256').update(url).digest('hex').slice(0, 16);
    this.file = join(dir, `outbox-${server}-${userId}.json`);
    this.entries = this.read();
    for (const e of this.entries) this.mine.add(e.clientMsgId);
  }

  private read(): Unsent[] {
    try {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as Unsent[];
      return Array.isArray(saved) ? saved.filter((e) => typeof e?.clientMsgId === 'string' && typeof e.channelId === 'string' && typeof e.text === 'string') : [];
    } catch {
      return []; // none yet (or unreadable: starting empty loses nothing the server has)
    }
  }

  list(): Unsent[] {
    return [...this.entries];
  }

  add(entry: Unsent): void {
    if (this.entries.some((e) => e.clientMsgId === entry.clientMsgId)) return;
    this.mine.add(entry.clientMsgId);
    this.entries.push(entry);
    this.save();
  }

  remove(clientMsgId: string): void {
    this.entries = this.entries.filter((e) => e.clientMsgId !== clientMsgId);
    this.save();
  }

  /** Written whole and renamed into place: a crash mid-write leaves the previous list, not half of one. */
  private save(): void {
    try {
      const all = [...this.read().filter((e) => !this.mine.has(e.clientMsgId)), ...this.entries];
      if (all.length === 0) return rmSync(this.file, { force: true });
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      writeFileSync(`${this.file}.tmp.${process.pid}`, JSON.stringify(all), { mode: 0o600 });
      renameSync(`${this.file}.tmp.${process.pid}`, this.file);
    } catch (err) {
      problem(new Error(`unsent messages not saved to ${this.file}: ${(err as Error).message}`));
    }
  }
}

const label = (c: Conversation | undefined) => (c ? (c.kind === 'dm' ? `@${c.name}` : `#${c.name}`) : '?');

async function main(): Promise<void> {
  const url = args.url!;
  const username = args.user!;
  const password = await askPassword();
  let auth;
  try {
    auth = args.register ? await register(url, { username, password }) : await login(url, { username, password });
  } catch (err) {
    problem(err);
    process.exit(1);
  }
  if (args.register) system(`signed up as ${auth.user.username}`);

  const client = new ParleyClient({
    url,
    getToken: refreshingToken(url, auth),
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    // PARLEY_DEBUG=1: every frame but pings on stderr.
    ...(process.env.PARLEY_DEBUG ? { onFrame: (dir: string, event: string, data: unknown) => void (event !== 'ping' && event !== 'pong' && process.stderr.write(`${dir} ${event} ${JSON.stringify(data)}\n`)) } : {}),
  });
  let current: string | null = null; // channelId
  /** The oldest seq shown per channel, for /history. */
  const oldestShown = new Map<string, number>();
  const readTimers = new Map<string, ReturnType<typeof setTimeout>>();

  const show = (m: Message) => {
    const c = client.conversation(m.channelId);
    out(`[${label(c)}] ${m.sender?.username ?? 'system'}: ${m.text}`);
    if (!oldestShown.has(m.channelId) || m.seq < oldestShown.get(m.channelId)!) oldestShown.set(m.channelId, m.seq);
  };

  /**
   * What was shown while its conversation was the current one is read: up to that seq (not the
   * head: a message that came while you were elsewhere stays unread). Once a moment, not per message.
   */
  const seen = new Map<string, number>();
  const markRead = (channelId: string, seq: number) => {
    seen.set(channelId, Math.max(seq, seen.get(channelId) ?? 0));
    if (readTimers.has(channelId)) return;
    readTimers.set(
      channelId,
      setTimeout(() => {
        readTimers.delete(channelId);
        const c = client.conversation(channelId);
        const upTo = seen.get(channelId) ?? 0;
        if (c && c.unreadCount > 0 && upTo > c.lastReadSeq) client.markRead(channelId, upTo).catch(problem);
      }, 200),
    );
  };

  client.on('message', (m) => {
    show(m);
    if (m.channelId === current) markRead(m.channelId, m.seq);
  });
  client.on('member', (e) => {
    if (e.user.id === client.user?.id && e.type !== 'updated') return;
    const where = label(client.conversation(e.channelId));
    const by = e.by ? ` (by ${e.by.username})` : '';
    if (e.type === 'updated') system(`${e.user.username} is now ${e.role} of ${where}${by}`);
    else system(`${e.user.username} ${e.type === 'joined' ? 'joined' : 'left'} ${where}${by}`);
  });
  client.on('presence', (p) => system(`${p.user.username} is ${p.status}`));
  client.on('conversation', (c, change) => {
    if (change === 'removed') {
      system(`you left ${label(c)}`);
      if (current === c.channelId) current = null;
    }
  });
  let wasReady = false;
  client.on('state', (s) => {
    if (s.state === 'ready') {
      system(wasReady ? 'reconnected' : `connected as ${client.user?.username} to ${url}`);
      wasReady = true;
    } else if (s.state === 'reconnecting' && s.attempt === 1) system(`connection lost${s.closeCode ? ` (${s.closeCode})` : ''}; reconnecting…`);
    else if (s.state === 'closed' && s.error) {
      problem(s.error); // the server will not have us any more (e.g. the session was ended)
      process.exit(1);
    }
  });
  client.on('error', problem);

  try {
    await client.connect();
  } catch (err) {
    problem(err);
    process.exit(1);
  }
  list(client);
  system('type /help for commands');

  // A line is in the outbox file from before it goes out until the server has answered it.
  const outbox = new Outbox(url, auth.user.id);
  const send = (entry: Unsent) => {
    outbox.add(entry);
    client.send(entry).then(
      () => outbox.remove(entry.clientMsgId),
      (err) => {
        if (err instanceof ParleyError && err.code === 'closed') return; // we are leaving: kept for the next start
        outbox.remove(entry.clientMsgId); // refused by the server: said below, not retried
        problem(err);
      },
    );
  };
  const unsent = outbox.list();
  if (unsent.length > 0) system(`sending ${unsent.length} message${unsent.length === 1 ? '' : 's'} left unsent last time`);
  for (const entry of unsent) send(entry);

  const byName = (name: string) => {
    const plain = name.replace(/^[#@]/, '').toLowerCase();
    return client.conversations.find((c) => c.name.toLowerCase() === plain);
  };

  const commands: Record<string, (arg: string) => Promise<void> | void> = {
    help: () => out(HELP),
    list: () => list(client),
    join: async (name) => {
      if (!name) return out('! usage: /join <channel>');
      const c = await client.join({ name: name.replace(/^#/, '') });
      current = c.channelId;
      system(`you are in ${label(c)} (${c.headSeq} messages; /history to see them)`);
    },
    dm: async (name) => {
      if (!name) return out('! usage: /dm <user>');
      const res = await client.api<{ channelId: string }>('POST', '/dms', { username: name.replace(/^@/, '') });
      current = res.channelId;
      system(`talking to @${name.replace(/^@/, '')}`);
    },
    open: (name) => {
      const c = byName(name);
      if (!c) return out(`! not_found: no conversation "${name}" (see /list)`);
      current = c.channelId;
      system(`talking in ${label(c)}`);
      if (c.unreadCount > 0) markRead(c.channelId, c.headSeq);
    },
    leave: async () => {
      if (!current) return out('! no current conversation');
      await client.leave(current);
    },
    who: () => {
      const dms = client.conversations.filter((c) => c.kind === 'dm' && c.peer);
      if (dms.length === 0) system('no contacts yet (/dm someone)');
      for (const c of dms) system(`${c.peer!.username} is ${c.peer!.status}`);
    },
    history: async (arg) => {
      if (!current) return out('! no current conversation');
      const limit = Math.min(200, Math.max(1, Number(arg) || 20));
      const before = oldestShown.get(current) ?? client.conversation(current)!.headSeq + 1;
      const page = await client.history(current, { beforeSeq: before, limit });
      if (page.messages.length === 0) return system('no earlier messages');
      for (const m of page.messages) show(m);
      oldestShown.set(current, page.messages[0].seq);
    },
    quit: () => {
      client.close();
      rl.close();
      process.exit(0);
    },
  };

  /** One line: a command (waited for before the next line) or a message (not waited for). */
  const handle = async (line: string): Promise<void> => {
    const text = line.trim();
    if (!text) return;
    if (text.startsWith('/')) {
      const [name, ...rest] = text.slice(1).split(/\s+/);
      const command = commands[name];
      if (!command) return out(`! unknown command /${name} (try /help)`);
      return Promise.resolve(command(rest.join(' '))).catch(problem);
    }
    if (!current) return out('! no current conversation: /join a channel or /dm someone first');
    // Sent even while the server is away: the SDK keeps it until it is stored, the outbox file
    // until then even if this program ends.
    send({ channelId: current, text, clientMsgId: newClientMsgId() });
  };
  let queue = Promise.resolve();
  onLine = (line) => (queue = queue.then(() => handle(line)));
  for (const line of early.splice(0)) onLine(line);
  rl.on('close', () => {
    // stdin ended (piped input): stay until the sends under way are stored, then go.
    setTimeout(() => {
      client.close();
      process.exit(0);
    }, 1000);
  });
}

function list(client: ParleyClient): void {
  const convs = client.conversations;
  if (convs.length === 0) return system('no conversations yet: /join a channel or /dm someone');
  system('conversations:');
  for (const c of convs) {
    const presence = c.peer ? ` (${c.peer.status})` : '';
    const unread = c.unreadCount > 0 ? ` — ${c.unreadCount} unread` : '';
    const last = c.lastMessage ? `: ${c.lastMessage.sender?.username ?? 'system'}: ${c.lastMessage.text.slice(0, 40)}` : '';
    system(`  ${label(c)}${presence}${unread}${last}`);
  }
}

main().catch((err) => {
  problem(err);
  process.exit(1);
});
