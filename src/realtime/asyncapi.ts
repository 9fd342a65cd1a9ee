import { CHANNEL_NAME_PATTERN } from '../channels/dto/channel.dto.js';
import { ERROR_CODES } from '../common/app-error.js';
import { QUOTA_NAMES } from '../common/error-response.dto.js';
import type { PublicOrigin } from '../common/public-origin.js';
import { MAX_SEQ } from '../common/int-field.decorator.js';
import { VISIBLE } from '../common/text-hygiene.js';
import { UUID_PATTERN } from '../common/uuid.js';
import { MAX_TEXT_LENGTH } from '../messages/dto/message.dto.js';
import type { ServerEvent } from './server-events.js';

/**
 * Every close code the server sends, and what the client does about it (the test holds this to
 * `CLOSE` in connection.ts). 1006 is no close frame at all: listed because clients see it.
 */
export const CLOSE_CODES: Record<number, string> = {
  1001: 'server shutting down: reconnect (another instance) and sync',
  1006: 'no close frame: a missed heartbeat or a lost network; reconnect and sync',
  1008:
    'policy: `token expired` (checked on every inbound frame and at each heartbeat: refresh the token, reconnect, sync), ' +
    '`session ended` (logout, the session ended from the list, a password change elsewhere, a reused refresh token: ' +
    'log in again), or `rate limit abuse` (back off)',
  1009: 'frame larger than MAX_FRAME_BYTES: do not send such frames',
  1011: 'the session could not start (database unavailable): reconnect after a moment',
  1012: 'service restart: this instance missed messages it could not refill; reconnect and sync',
  4008: 'slow consumer: the send buffer passed SEND_BUFFER_CAP_BYTES; reconnect, sync, read faster',
};

/**
 * The WebSocket protocol v1 as an AsyncAPI 3 document, served at /asyncapi.json. Written by
 * hand (no generator reads Nest gateways); a test checks that its receive operations are exactly
 * the gateway's @SubscribeMessage events and its send operations exactly ServerEventMap's, and
 * the e2e suites check every frame they receive against it (test/helpers/contract.ts).
 *
 * Client frames are described as strictly as the server checks them (`additionalProperties:
 * false`: the ValidationPipe refuses unknown fields); server frames list every field the server
 * sends, and clients should ignore fields they do not know (new ones may come).
 */
type Schema = Record<string, unknown>;

const str = (extra: Schema = {}): Schema => ({ type: 'string', ...extra });
const int = (extra: Schema = {}): Schema => ({ type: 'integer', ...extra });
const bool = (extra: Schema = {}): Schema => ({ type: 'boolean', ...extra });
const uuid = (extra: Schema = {}): Schema => str({ format: 'uuid', ...extra });
/** A UUID a client gives: exactly what the server accepts. */
const uuidIn = (extra: Schema = {}): Schema => uuid({ pattern: UUID_PATTERN, ...extra });
const seq = (min: 0 | 1, extra: Schema = {}): Schema => int({ minimum: min, maximum: MAX_SEQ, ...extra });
const obj = (properties: Record<string, Schema>, required: string[] = [], extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  ...(required.length ? { required } : {}),
  ...extra,
});
/** What a client sends: exactly these fields (the server refuses others with invalid_payload). */
const strict = (properties: Record<string, Schema>, required: string[] = [], extra: Schema = {}): Schema =>
  obj(properties, required, { additionalProperties: false, ...extra });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const refField = { ref: str({ maxLength: 64, description: 'echoed in the answer to this frame' }) };
const echoedRef = { ref: str({ maxLength: 64, description: 'the `ref` of the frame this answers' }) };
const text = str({ minLength: 1, maxLength: MAX_TEXT_LENGTH, pattern: VISIBLE.source, description: 'at least one visible character' });
const clientMsgId = str({ minLength: 1, maxLength: 64, description: "the sender's idempotency key" });
const channelName = str({ pattern: CHANNEL_NAME_PATTERN.source });

const schemas: Record<string, Schema> = {
  UserRef: obj({ id: uuid(), username: str() }, ['id', 'username']),
  Message: obj(
    {
      id: uuid(),
      channelId: uuid(),
      seq: seq(1, { description: 'per-channel, 1, 2, 3, ... with no gaps' }),
      kind: str({ enum: ['user', 'system'], description: '`system`: a notice posted by the server API (show it as such); its sender is null' }),
      sender: { oneOf: [ref('UserRef'), { type: 'null' }], description: 'null for a system message; fetch profiles with GET /users/{id}' },
      text,
      clientMsgId,
      createdAt: str({ format: 'date-time' }),
    },
    ['id', 'channelId', 'seq', 'kind', 'sender', 'text', 'clientMsgId', 'createdAt'],
  ),
  Peer: obj(
    {
      id: uuid(),
      username: str(),
      status: str({ enum: ['online', 'offline'], description: 'offline too when you do not share presence (the DM not accepted by both of you, or a block)' }),
    },
    ['id', 'username', 'status'],
  ),
  Conversation: obj(
    {
      channelId: uuid(),
      kind: str({ enum: ['dm', 'channel'] }),
      name: str({ description: "channel name, or the peer's username for a DM" }),
      peer: { ...ref('Peer'), description: 'DMs only' },
      lastMessage: { oneOf: [ref('Message'), { type: 'null' }], description: 'the latest message, or null when there is none' },
      headSeq: seq(0),
      lastReadSeq: seq(0),
      unreadCount: int({ minimum: 0 }),
      accepted: {
        type: 'boolean',
        description: 'false while this is a request you have not accepted (a DM someone opened with you, a channel someone added you to); post in it, read a channel, or POST /channels/{id}/accept',
      },
    },
    ['channelId', 'kind', 'name', 'lastMessage', 'headSeq', 'lastReadSeq', 'unreadCount', 'accepted'],
  ),
};

/** A client frame: `data` may be left out when none of its fields is required (it is then `{}`). */
const clientFrame = (event: string, data: Schema): Schema => ({
  type: 'object',
  required: (data.required || data.oneOf) ? ['event', 'data'] : ['event'],
  properties: { event: { type: 'string', const: event }, data },
});

/** A server frame: always exactly `event` and `data`. */
const serverFrame = (event: string, data: Schema): Schema => ({
  type: 'object',
  required: ['event', 'data'],
  properties: { event: { type: 'string', const: event }, data },
});

/** Client → server frames (the gateway's @SubscribeMessage events). */
const clientEvents: Record<string, { summary: string; data: Schema }> = {
  'message.send': {
    summary:
      'Send a message to a channel (channelId) or a user (to: DM created on first use). Answered by message.ack, then message.new to every member connection. ' +
      'Posting accepts a conversation someone else put you in. In a DM between users one of whom blocked the other (or to open one): error forbidden.',
    data: strict({ channelId: uuidIn(), to: str({ maxLength: 32, description: 'a username' }), text, clientMsgId, ...refField }, ['text', 'clientMsgId'], {
      oneOf: [{ required: ['channelId'] }, { required: ['to'] }],
    }),
  },
  'channel.join': {
    summary: 'Join a public channel by name (created if missing) or by id. Answered by channel.joined.',
    data: strict({ name: channelName, channelId: uuidIn(), ...refField }, [], { oneOf: [{ required: ['name'] }, { required: ['channelId'] }] }),
  },
  'channel.leave': { summary: 'Leave a channel. Answered by channel.left.', data: strict({ channelId: uuidIn(), ...refField }, ['channelId']) },
  read: {
    summary: "Move the read marker forward; reading a channel someone added you to accepts it (a DM is not accepted by reading). Answered by conversation.update (also to the reader's other connections).",
    data: strict({ channelId: uuidIn(), seq: seq(0), ...refField }, ['channelId', 'seq']),
  },
  typing: { summary: "Tell the channel's other members you are typing (throttled to 1/s).", data: strict({ channelId: uuidIn(), ...refField }, ['channelId']) },
  sync: {
    summary: 'Resume: for each channel (1 to 500) the last seq seen; one sync.result per channel, repeat while hasMore. A channel you may not read answers an error with details.channelId; an empty channels answers invalid_payload.',
    data: strict(
      {
        channels: {
          type: 'object',
          minProperties: 1,
          maxProperties: 500,
          propertyNames: { format: 'uuid', pattern: UUID_PATTERN },
          additionalProperties: seq(0),
          description: 'channelId → the last seq the client has',
        },
        ...refField,
      },
      ['channels'],
    ),
  },
  history: {
    summary: 'A page of older messages. Answered by history.result.',
    data: strict({ channelId: uuidIn(), beforeSeq: seq(1), limit: int({ minimum: 1, maximum: 200, default: 50 }), ...refField }, ['channelId']),
  },
  ping: { summary: 'Application-level ping. Answered by pong.', data: strict({ ...refField }) },
};

/** Server → client frames (ServerEventMap). */
const serverEvents: Record<ServerEvent, { summary: string; data: Schema }> = {
  'session.ready': {
    summary: 'First frame of every connection.',
    data: obj(
      {
        user: ref('UserRef'),
        sessionId: str({ description: 'this connection, unique across instances' }),
        heartbeatIntervalMs: int({ minimum: 1 }),
        conversations: { type: 'array', items: ref('Conversation') },
      },
      ['user', 'sessionId', 'heartbeatIntervalMs', 'conversations'],
    ),
  },
  'message.ack': {
    summary: 'The message is stored (committed). duplicate is true on an idempotent retry.',
    data: obj({ clientMsgId, message: ref('Message'), duplicate: bool(), ...echoedRef }, ['clientMsgId', 'message', 'duplicate']),
  },
  'message.new': { summary: 'A new message, to every connection of every member, in seq order per channel.', data: obj({ message: ref('Message') }, ['message']) },
  'conversation.update': { summary: 'A conversation as the receiving user sees it (unread count, marker, preview).', data: obj({ conversation: ref('Conversation'), ...echoedRef }, ['conversation']) },
  'presence.update': {
    summary:
      'Someone you share a conversation that both of you accepted with (and no block either way) came online or went offline; ' +
      'also when sharing starts (an acceptance, an unblock: status online if they are) or stops (a block: status offline, lastSeenAt null).',
    data: obj(
      { user: ref('UserRef'), status: str({ enum: ['online', 'offline'] }), lastSeenAt: { type: ['string', 'null'], format: 'date-time', description: 'null when never seen, or when sharing stops' } },
      ['user', 'status', 'lastSeenAt'],
    ),
  },
  typing: { summary: 'Another member is typing.', data: obj({ channelId: uuid(), user: ref('UserRef') }, ['channelId', 'user']) },
  'member.joined': { summary: 'Someone joined a channel you are in.', data: obj({ channelId: uuid(), user: ref('UserRef') }, ['channelId', 'user']) },
  'member.left': { summary: 'Someone left a channel you are in.', data: obj({ channelId: uuid(), user: ref('UserRef') }, ['channelId', 'user']) },
  'channel.joined': { summary: 'Answer to channel.join.', data: obj({ conversation: ref('Conversation'), ...echoedRef }, ['conversation']) },
  'channel.left': { summary: 'Answer to channel.leave (also sent to your other connections).', data: obj({ channelId: uuid(), ...echoedRef }, ['channelId']) },
  'sync.result': {
    summary: 'Messages after the given seq, ascending; repeat sync from the last one while hasMore.',
    data: obj(
      { channelId: uuid(), messages: { type: 'array', items: ref('Message') }, headSeq: int({ minimum: 0 }), hasMore: bool(), ...echoedRef },
      ['channelId', 'messages', 'headSeq', 'hasMore'],
    ),
  },
  'history.result': {
    summary: 'Answer to history: ascending seq; hasMore when older messages exist.',
    data: obj({ channelId: uuid(), messages: { type: 'array', items: ref('Message') }, hasMore: bool(), ...echoedRef }, ['channelId', 'messages', 'hasMore']),
  },
  pong: { summary: 'Answer to ping.', data: obj({ serverTime: str({ format: 'date-time' }), ...echoedRef }, ['serverTime']) },
  error: {
    summary: 'A frame could not be handled. The connection stays open.',
    data: obj(
      {
        code: str({ enum: [...ERROR_CODES] }),
        message: str(),
        ref: str({ maxLength: 64, description: 'the `ref` of the frame this answers, when it had one' }),
        clientMsgId: str({ description: 'the clientMsgId of the message.send this answers' }),
        retryAfterMs: int({ minimum: 0, description: 'with rate_limited: milliseconds to wait' }),
        details: obj(
          {
            fields: { type: 'object', additionalProperties: { type: 'array', items: str() }, description: 'invalid_payload: each refused field and why' },
            channelId: uuid({ description: 'an error answering one channel of a sync' }),
            usernames: { type: 'array', items: str(), description: 'not_found: the usernames that do not exist; a channels_per_user quota: the members at it' },
            quota: str({ enum: [...QUOTA_NAMES], description: 'a quota the frame is over (forbidden, or invalid_payload for members_per_request)' }),
            limit: int({ minimum: 1, description: 'that quota' }),
          },
          [],
        ),
      },
      ['code', 'message'],
    ),
  },
};

const key = (event: string) => event.replace(/\./g, '_');

/**
 * The document as served to a request: `origin` is where the client reached us (PUBLIC_URL, or
 * the request's Host; null when that is no plain address: the document then names no server).
 */
export function asyncApiDocument(origin: PublicOrigin | null): Record<string, unknown> {
  const messages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  // The server receives the client's events and sends its own (AsyncAPI 3 takes its own view).
  const sides = [
    ['client', 'receive', clientEvents, clientFrame],
    ['server', 'send', serverEvents, serverFrame],
  ] as const;
  for (const [side, action, events, frameOf] of sides) {
    for (const [event, def] of Object.entries(events)) {
      const id = `${side}_${key(event)}`;
      messages[id] = { name: event, contentType: 'application/json', summary: def.summary, payload: frameOf(event, def.data) };
      operations[`${action}_${key(event)}`] = {
        action,
        channel: { $ref: '#/channels/ws' },
        summary: def.summary,
        messages: [{ $ref: `#/channels/ws/messages/${id}` }],
      };
    }
  }
  const security = [
    { $ref: '#/components/securitySchemes/bearer' },
    { $ref: '#/components/securitySchemes/token' },
    { $ref: '#/components/securitySchemes/ticket' },
  ];
  const servers = origin
    ? {
        parley: {
          host: origin.host,
          protocol: origin.secure ? 'wss' : 'ws',
          ...(origin.prefix ? { pathname: origin.prefix } : {}),
          description: `The WebSocket endpoint is ${origin.secure ? 'wss' : 'ws'}://${origin.host}${origin.prefix}/ws (the channel's address), on the same port as HTTP.`,
          security,
        },
      }
    : undefined;
  return {
    asyncapi: '3.1.0',
    info: {
      title: 'Parley WebSocket protocol',
      version: '1',
      description:
        'JSON text frames {"event", "data"} both ways, at `/ws` on the same host and port as the HTTP API. Authenticate at the ' +
        'handshake with `Authorization: Bearer <jwt>`, `?token=<jwt>`, or `?ticket=<ticket>` (a single-use ticket of a few ' +
        'seconds from `POST /auth/ws-ticket`, so a browser puts no long-lived token in a URL). The handshake answers 401 when the ' +
        'token is missing, invalid, expired, without `exp`, or of an ended session, or when the ticket is unknown, used or ' +
        'expired; 403 for a disallowed Origin. A client frame may carry `ref` in `data`: the answer to it echoes it. Strings ' +
        'with control characters (other than newline and tab) or lone surrogates are refused (invalid_payload), and JSON ' +
        'nested deeper than 32 levels is refused before parsing (bad_json). Close codes: ' +
        Object.entries(CLOSE_CODES).map(([code, what]) => `${code} ${what}`).join('; ') +
        '. Any instance of a cluster serves any client. See docs/protocol.md.',
    },
    ...(servers ? { servers } : {}),
    channels: {
      ws: {
        address: '/ws',
        description: 'The one WebSocket endpoint: every event both ways goes through it.',
        ...(servers ? { servers: [{ $ref: '#/servers/parley' }] } : {}),
        messages,
        bindings: {
          ws: {
            method: 'GET',
            query: obj({
              token: str({ description: 'the access token (JWT), for clients that cannot set headers' }),
              ticket: str({ description: 'a ticket from POST /auth/ws-ticket: one handshake, within its expiresIn seconds' }),
            }),
          },
        },
        'x-close-codes': CLOSE_CODES,
      },
    },
    operations,
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: '`Authorization: Bearer <accessToken>`: Parley\'s own (login, refresh, minted by the server API) or, when configured, one the product signed (RS256/ES256)' },
        token: { type: 'httpApiKey', in: 'query', name: 'token', description: 'the access token in the URL (`?token=`)' },
        ticket: { type: 'httpApiKey', in: 'query', name: 'ticket', description: 'a single-use ticket of a few seconds (`POST /auth/ws-ticket`)' },
      },
    },
  };
}
