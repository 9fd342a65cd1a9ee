// What the two reference servers share: token check, in-memory channels, the
// Message shape of DESIGN.md, and the hand-written payload validation.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import jwt from 'jsonwebtoken';

const SECRET = process.env.JWT_SECRET || 'bench-secret';

// Same token Parley accepts: Authorization: Bearer <jwt> or ?token=<jwt>.
export function userFromRequest(req) {
  let token = /^Bearer (.+)$/.exec(req.headers.authorization || '')?.[1];
  if (!token) token = new URL(req.url, 'http://x').searchParams.get('token');
  if (!token) return null;
  try {
    const p = jwt.verify(token, SECRET, { algorithms: ['HS256'] });
    return { id: p.sub, username: p.username };
  } catch { return null; }
}

// Channels by id and by name; members are whatever the server uses for a connection.
export const channels = new Map();
const byName = new Map();
export function joinByName(name) {
  let ch = byName.get(name);
  if (!ch) {
    ch = { id: randomUUID(), name, seq: 0, members: new Set() };
    byName.set(name, ch);
    channels.set(ch.id, ch);
  }
  return ch;
}
// Direct messages (`message.send` with `to: <username>` instead of `channelId`, as the ingest
// scenario sends): one channel per pair of users, made on the first message, as in Parley. Its
// members are both users' connections at send time (each server keeps its own per-user sets).
const dms = new Map();
export function dmOf(from, to) {
  const key = from < to ? `${from}\n${to}` : `${to}\n${from}`;
  let ch = dms.get(key);
  if (!ch) {
    ch = { id: randomUUID(), name: null, seq: 0, users: [from, to], members: new Set() };
    dms.set(key, ch);
    channels.set(ch.id, ch);
  }
  return ch;
}
export const conversationOf = (ch) => ({ channelId: ch.id, kind: 'channel', name: ch.name, lastMessage: null, headSeq: ch.seq, lastReadSeq: 0, unreadCount: 0 });

// Returns an error frame payload, or null when the payload is valid.
export function validateSend(d) {
  const bad = (field, message) => ({ code: 'invalid_payload', message, details: [{ field, message }], ref: d?.ref, clientMsgId: d?.clientMsgId });
  if (!d || typeof d !== 'object') return bad('data', 'data must be an object');
  if (d.to !== undefined && d.channelId === undefined) {
    if (typeof d.to !== 'string' || d.to.length < 1 || d.to.length > 64) return bad('to', 'to must be a username');
  } else if (typeof d.channelId !== 'string' || d.channelId.length > 64) return bad('channelId', 'channelId must be a string');
  if (typeof d.text !== 'string' || d.text.length < 1 || d.text.length > 4000) return bad('text', 'text must be 1..4000 characters');
  if (typeof d.clientMsgId !== 'string' || d.clientMsgId.length < 1 || d.clientMsgId.length > 64) return bad('clientMsgId', 'clientMsgId must be 1..64 characters');
  return null;
}

export function makeMessage(ch, user, d) {
  return { id: randomUUID(), channelId: ch.id, seq: ++ch.seq, sender: user, text: d.text, clientMsgId: d.clientMsgId, createdAt: new Date().toISOString() };
}

export function sessionReady(user) {
  return { user, sessionId: randomUUID(), heartbeatIntervalMs: 30_000, conversations: [] };
}

// HTTP server with /health, shared by both references.
export function httpServer() {
  return createServer((req, res) => {
    if (req.url === '/health') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"status":"ok"}'); return; }
    res.writeHead(404).end();
  });
}

export const SEND_BUFFER_CAP = Number(process.env.SEND_BUFFER_CAP_BYTES || 4 * 1024 * 1024);
