// Reference (a): the practical limit of channel fan-out on Node with `ws`.
// Speaks Parley's frames ({"event","data"} JSON, message.send in, message.ack +
// message.new out) but keeps everything in memory: no database, no per-recipient
// personalization. Each message.new frame is serialized once into one Buffer and
// that same Buffer is handed to every member socket.
import { WebSocketServer } from 'ws';
import { userFromRequest, channels, joinByName, dmOf, conversationOf, validateSend, makeMessage, sessionReady, httpServer, SEND_BUFFER_CAP } from './common.mjs';

const server = httpServer();
const wss = new WebSocketServer({ noServer: true, maxPayload: 65536 });

server.on('upgrade', (req, socket, head) => {
  if (!req.url.startsWith('/ws')) return socket.destroy();
  const user = userFromRequest(req);
  if (!user) { socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n'); return; }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user));
});

const frame = (event, data) => JSON.stringify({ event, data });

// Each user's connections, for direct messages (a DM's members are both users' connections).
const byUser = new Map();
const NONE = new Set();

function deliver(members, out) {
  for (const m of members) {
    // Same slow-consumer rule as Parley (close 4008 past the cap).
    if (m.bufferedAmount > SEND_BUFFER_CAP) { m.close(4008, 'slow consumer'); continue; }
    m.send(out, { binary: false });
  }
}

function onConnection(ws, user) {
  ws.user = user;
  ws.alive = true;
  ws.chans = new Set();
  let mine = byUser.get(user.username);
  if (!mine) byUser.set(user.username, (mine = new Set()));
  mine.add(ws);
  ws.on('pong', () => { ws.alive = true; });
  ws.on('close', () => {
    for (const ch of ws.chans) ch.members.delete(ws);
    mine.delete(ws);
  });
  ws.on('message', (raw) => {
    let f;
    try { f = JSON.parse(raw); } catch { return ws.send(frame('error', { code: 'bad_json', message: 'bad JSON' })); }
    const d = f?.data;
    switch (f?.event) {
      case 'message.send': {
        const err = validateSend(d);
        if (err) return ws.send(frame('error', err));
        const dm = d.channelId === undefined;
        const ch = dm ? dmOf(user.username, d.to) : channels.get(d.channelId);
        if (!ch || !(dm || ch.members.has(ws))) return ws.send(frame('error', { code: 'forbidden', message: 'not a member', clientMsgId: d.clientMsgId }));
        const message = makeMessage(ch, user, d);
        ws.send(frame('message.ack', { clientMsgId: d.clientMsgId, message, duplicate: false }));
        const out = Buffer.from(frame('message.new', { message }));
        // Plain loops over the member sets (no generator per message: the reference's ingest
        // must cost no more than it has to).
        if (!dm) deliver(ch.members, out);
        else for (const u of ch.users) deliver(byUser.get(u) ?? NONE, out);
        return;
      }
      case 'channel.join': {
        if (typeof d?.name !== 'string') return ws.send(frame('error', { code: 'invalid_payload', message: 'name required' }));
        const ch = joinByName(d.name);
        ch.members.add(ws);
        ws.chans.add(ch);
        return ws.send(frame('channel.joined', { conversation: conversationOf(ch) }));
      }
      case 'ping':
        return ws.send(frame('pong', { serverTime: new Date().toISOString() }));
      default:
        return ws.send(frame('error', { code: 'unknown_event', message: `unknown event ${f?.event}` }));
    }
  });
  ws.send(frame('session.ready', sessionReady(user)));
}

// Heartbeat like Parley's: ping every 30 s, drop sockets that missed a pong.
setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.alive) { ws.terminate(); continue; }
    ws.alive = false;
    ws.ping();
  }
}, 30_000).unref();

server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
