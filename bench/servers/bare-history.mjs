// The floor for Parley's history endpoint: bare node:http + better-sqlite3 doing
// the same work per request on the same database file: verify the JWT, check
// membership, read one page of messages with their senders, answer the same
// JSON ({channelId, messages: [Message ascending], hasMore}), byte for byte:
// the scenario compares the two pages' JSON, so a Message field Parley adds
// must be added here too (src/messages/message.mapper.ts, rowToMessage).
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import jwt from 'jsonwebtoken';

const db = new Database(process.env.DB_FILE);
db.pragma('journal_mode = WAL');
const SECRET = process.env.JWT_SECRET;
const SYSTEM_USER_ID = '00000000-0000-0000-0000-000000000000';
const isMember = db.prepare('SELECT 1 FROM memberships WHERE channel_id = ? AND user_id = ?').pluck();
const SELECT = `SELECT m.id, m.channel_id, m.seq, m.rev, m.sender_id, u.username, m.text, m.client_msg_id, m.created_at,
  m.edited_at, m.deleted_at, m.reply_to, m.mentions, m.reactions
  FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.channel_id = ?`;
const latest = db.prepare(`${SELECT} ORDER BY m.seq DESC LIMIT ?`);
const before = db.prepare(`${SELECT} AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`);
const after = db.prepare(`${SELECT} AND m.seq > ? ORDER BY m.seq ASC LIMIT ?`);

const send = (res, code, body) => {
  const s = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(s) });
  res.end(s);
};
const iso = (ms) => new Date(Number(ms)).toISOString();
const toMessage = (r) => {
  const system = r.sender_id === SYSTEM_USER_ID;
  const m = {
    id: r.id, channelId: r.channel_id, seq: r.seq, rev: r.rev, kind: system ? 'system' : 'user',
    sender: system ? null : { id: r.sender_id, username: r.username }, text: r.text, clientMsgId: r.client_msg_id,
    createdAt: iso(r.created_at), deleted: r.deleted_at !== null,
    mentions: r.mentions ? JSON.parse(r.mentions) : [], reactions: r.reactions ? JSON.parse(r.reactions) : [],
  };
  if (r.edited_at !== null) m.editedAt = iso(r.edited_at);
  if (r.reply_to) m.replyTo = JSON.parse(r.reply_to);
  return m;
};

createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/health') return send(res, 200, { status: 'ok' });
  const m = /^\/channels\/([^/]+)\/messages$/.exec(url.pathname);
  if (req.method !== 'GET' || !m) return send(res, 404, { statusCode: 404, code: 'not_found', message: 'not found' });
  let user;
  try { user = jwt.verify(/^Bearer (.+)$/.exec(req.headers.authorization || '')?.[1] || '', SECRET, { algorithms: ['HS256'] }); }
  catch { return send(res, 401, { statusCode: 401, code: 'unauthorized', message: 'bad token' }); }
  const channelId = m[1];
  if (!isMember.get(channelId, user.sub)) return send(res, 403, { statusCode: 403, code: 'forbidden', message: 'not a member' });
  const limit = Math.min(200, Math.max(1, Number(url.searchParams.get('limit')) || 50));
  const b = url.searchParams.get('before'), a = url.searchParams.get('after');
  let rows;
  if (a) rows = after.all(channelId, Number(a), limit + 1);
  else rows = (b ? before.all(channelId, Number(b), limit + 1) : latest.all(channelId, limit + 1));
  const hasMore = rows.length > limit;
  rows = rows.slice(0, limit);
  if (!a) rows.reverse();
  send(res, 200, { channelId, messages: rows.map(toMessage), hasMore });
}).listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => { db.close(); process.exit(0); });
