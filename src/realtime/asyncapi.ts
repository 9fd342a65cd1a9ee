import { ERROR_CODES } from '../common/app-error.js';
import type { ServerEvent } from './server-events.js';

/**
 * The WebSocket protocol v1 as an AsyncAPI 3 document, served at /asyncapi.json. Written by
 * hand (no generator reads Nest gateways); a test checks that its receive operations are exactly
 * the gateway's @SubscribeMessage events and its send operations exactly ServerEventMap's.
 */
type Schema = Record<string, unknown>;

const str = (extra: Schema = {}): Schema => ({ type: 'string', ...extra });
const int = (extra: Schema = {}): Schema => ({ type: 'integer', ...extra });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  properties,
  ...(required.length ? { required } : {}),
});
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const refField = { ref: str({ maxLength: 64, description: 'echoed in the answer to this frame' }) };

const schemas: Record<string, Schema> = {
  UserRef: obj({ id: str({ format: 'uuid' }), username: str() }, ['id', 'username']),
  Message: obj(
    {
      id: str({ format: 'uuid' }),
      channelId: str({ format: 'uuid' }),
      seq: int({ minimum: 1, description: 'per-channel, 1, 2, 3, ... with no gaps' }),
      sender: ref('UserRef'),
      text: str({ minLength: 1, maxLength: 4000 }),
      clientMsgId: str({ maxLength: 64 }),
      createdAt: str({ format: 'date-time' }),
    },
    ['id', 'channelId', 'seq', 'sender', 'text', 'clientMsgId', 'createdAt'],
  ),
  Conversation: obj(
    {
      channelId: str({ format: 'uuid' }),
      kind: str({ enum: ['dm', 'channel'] }),
      name: str({ description: "channel name, or the peer's username for a DM" }),
      peer: obj({ id: str({ format: 'uuid' }), username: str(), status: str({ enum: ['online', 'offline'] }) }),
      lastMessage: { oneOf: [ref('Message'), { type: 'null' }] },
      headSeq: int({ minimum: 0 }),
      lastReadSeq: int({ minimum: 0 }),
      unreadCount: int({ minimum: 0 }),
    },
    ['channelId', 'kind', 'name', 'lastMessage', 'headSeq', 'lastReadSeq', 'unreadCount'],
  ),
};

const frameOf = (event: string, data: Schema): Schema => ({
  type: 'object',
  required: ['event', 'data'],
  properties: { event: { const: event }, data },
});

/** Client → server frames (the gateway's @SubscribeMessage events). */
const clientEvents: Record<string, { summary: string; data: Schema }> = {
  'message.send': {
    summary: 'Send a message to a channel (channelId) or a user (to: DM created on first use). Answered by message.ack, then message.new to every member connection.',
    data: obj({ channelId: str({ format: 'uuid' }), to: str(), text: str({ minLength: 1, maxLength: 4000 }), clientMsgId: str({ minLength: 1, maxLength: 64 }), ...refField }, ['text', 'clientMsgId']),
  },
  'channel.join': {
    summary: 'Join a public channel by name (created if missing) or by id. Answered by channel.joined.',
    data: obj({ name: str(), channelId: str({ format: 'uuid' }), ...refField }),
  },
  'channel.leave': { summary: 'Leave a channel. Answered by channel.left.', data: obj({ channelId: str({ format: 'uuid' }), ...refField }, ['channelId']) },
  read: {
    summary: "Move the read marker forward. Answered by conversation.update (also to the reader's other connections).",
    data: obj({ channelId: str({ format: 'uuid' }), seq: int({ minimum: 0 }), ...refField }, ['channelId', 'seq']),
  },
  typing: { summary: "Tell the channel's other members you are typing (throttled to 1/s).", data: obj({ channelId: str({ format: 'uuid' }), ...refField }, ['channelId']) },
  sync: {
    summary: 'Resume: for each channel the last seq seen; one sync.result per channel, repeat while hasMore.',
    data: obj({ channels: { type: 'object', additionalProperties: int({ minimum: 0 }) }, ...refField }, ['channels']),
  },
  history: {
    summary: 'A page of older messages. Answered by history.result.',
    data: obj({ channelId: str({ format: 'uuid' }), beforeSeq: int({ minimum: 1 }), limit: int({ minimum: 1, maximum: 200, default: 50 }), ...refField }, ['channelId']),
  },
  ping: { summary: 'Application-level ping. Answered by pong.', data: obj({ ...refField }) },
};

/** Server → client frames (ServerEventMap). */
const serverEvents: Record<ServerEvent, { summary: string; data: Schema }> = {
  'session.ready': {
    summary: 'First frame of every connection.',
    data: obj({ user: ref('UserRef'), sessionId: str(), heartbeatIntervalMs: int(), conversations: { type: 'array', items: ref('Conversation') } }, ['user', 'sessionId', 'heartbeatIntervalMs', 'conversations']),
  },
  'message.ack': {
    summary: 'The message is stored (committed). duplicate is true on an idempotent retry.',
    data: obj({ clientMsgId: str(), message: ref('Message'), duplicate: { type: 'boolean' }, ...refField }, ['clientMsgId', 'message', 'duplicate']),
  },
  'message.new': { summary: 'A new message, to every connection of every member, in seq order per channel.', data: obj({ message: ref('Message') }, ['message']) },
  'conversation.update': { summary: 'A conversation as the receiving user sees it (unread count, marker, preview).', data: obj({ conversation: ref('Conversation'), ...refField }, ['conversation']) },
  'presence.update': {
    summary: 'Someone you share a conversation with came online or went offline.',
    data: obj({ user: ref('UserRef'), status: str({ enum: ['online', 'offline'] }), lastSeenAt: { type: ['string', 'null'], format: 'date-time' } }, ['user', 'status']),
  },
  typing: { summary: 'Another member is typing.', data: obj({ channelId: str({ format: 'uuid' }), user: ref('UserRef') }, ['channelId', 'user']) },
  'member.joined': { summary: 'Someone joined a channel you are in.', data: obj({ channelId: str({ format: 'uuid' }), user: ref('UserRef') }, ['channelId', 'user']) },
  'member.left': { summary: 'Someone left a channel you are in.', data: obj({ channelId: str({ format: 'uuid' }), user: ref('UserRef') }, ['channelId', 'user']) },
  'channel.joined': { summary: 'Answer to channel.join.', data: obj({ conversation: ref('Conversation'), ...refField }, ['conversation']) },
  'channel.left': { summary: 'Answer to channel.leave (also sent to your other connections).', data: obj({ channelId: str({ format: 'uuid' }), ...refField }, ['channelId']) },
  'sync.result': {
    summary: 'Messages after the given seq, ascending; repeat sync from the last one while hasMore.',
    data: obj({ channelId: str({ format: 'uuid' }), messages: { type: 'array', items: ref('Message') }, headSeq: int(), hasMore: { type: 'boolean' }, ...refField }, ['channelId', 'messages', 'headSeq', 'hasMore']),
  },
  'history.result': {
    summary: 'Answer to history: ascending seq; hasMore when older messages exist.',
    data: obj({ channelId: str({ format: 'uuid' }), messages: { type: 'array', items: ref('Message') }, hasMore: { type: 'boolean' }, ...refField }, ['channelId', 'messages', 'hasMore']),
  },
  pong: { summary: 'Answer to ping.', data: obj({ serverTime: str({ format: 'date-time' }), ...refField }, ['serverTime']) },
  error: {
    summary: 'A frame could not be handled. The connection stays open.',
    data: obj(
      {
        code: str({ enum: [...ERROR_CODES] }),
        message: str(),
        ref: str(),
        clientMsgId: str(),
        retryAfterMs: int({ description: 'with rate_limited' }),
        details: { type: 'object', description: 'invalid_payload: {fields: {name: [messages]}}; sync errors: {channelId}' },
      },
      ['code', 'message'],
    ),
  },
};

const key = (event: string) => event.replace(/\./g, '_');

function buildDocument(): Record<string, unknown> {
  const messages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  // The server receives the client's events and sends its own (AsyncAPI 3 takes its own view).
  const sides = [
    ['client', 'receive', clientEvents],
    ['server', 'send', serverEvents],
  ] as const;
  for (const [side, action, events] of sides) {
    for (const [event, def] of Object.entries(events)) {
      const id = `${side}_${key(event)}`;
      messages[id] = { name: event, summary: def.summary, payload: frameOf(event, def.data) };
      operations[`${action}_${key(event)}`] = {
        action,
        channel: { $ref: '#/channels/ws' },
        summary: def.summary,
        messages: [{ $ref: `#/channels/ws/messages/${id}` }],
      };
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Parley WebSocket protocol',
      version: '1',
      description:
        'JSON text frames {"event", "data"} both ways. Authenticate at the handshake with `Authorization: Bearer <jwt>` ' +
        'or `?token=<jwt>` (401 when missing/invalid, 403 for a disallowed Origin). Close codes: 1001 server shutting down, ' +
        '1008 policy (abuse, token), 1009 frame too large, 1011 session could not start, 1012 service restart (an instance ' +
        'missed messages it could not refill: resume with sync), 4008 slow consumer. Any instance of a cluster serves any ' +
        'client. See docs/protocol.md.',
    },
    servers: { local: { host: 'localhost:3000', protocol: 'ws', pathname: '/ws' } },
    channels: { ws: { address: '/ws', messages } },
    operations,
    components: { schemas },
  };
}

export const ASYNCAPI_DOCUMENT = buildDocument();
