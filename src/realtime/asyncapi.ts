import { CHANNEL_NAME_PATTERN } from '../channels/dto/channel.dto.js';
import { ERROR_CODES } from '../common/app-error.js';
import { FORBIDDEN_REASONS, QUOTA_NAMES } from '../common/error-response.dto.js';
import type { PublicOrigin } from '../common/public-origin.js';
import { MAX_SEQ } from '../common/int-field.decorator.js';
import { VISIBLE } from '../common/text-hygiene.js';
import { UUID_PATTERN } from '../common/uuid.js';
import { EMOJI_MAX_LENGTH, EMOJI_PATTERN, MAX_TEXT_LENGTH } from '../messages/dto/message.dto.js';
import { MAX_REACTION_EMOJI } from '../messages/message-writer.js';
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
const emoji = str({ minLength: 1, maxLength: EMOJI_MAX_LENGTH, pattern: EMOJI_PATTERN.source, description: 'one emoji, or a :short_name:' });

const schemas: Record<string, Schema> = {
  UserRef: obj({ id: uuid(), username: str() }, ['id', 'username']),
  Message: obj(
    {
      id: uuid(),
      channelId: uuid(),
      seq: seq(1, { description: 'per-channel, 1, 2, 3, ... with no gaps; never changes' }),
      rev: int({ minimum: 1, description: "v1.1: the channel's revision at this message's last change (creation, edit, delete, reaction); the highest rev of a message is its current state" }),
      kind: str({ enum: ['user', 'system'], description: '`system`: a notice posted by the server API (show it as such); its sender is null' }),
      sender: { oneOf: [ref('UserRef'), { type: 'null' }], description: 'null for a system message; fetch profiles with GET /users/{id}' },
      text: str({ maxLength: MAX_TEXT_LENGTH, description: 'empty for a deleted message' }),
      clientMsgId,
      createdAt: str({ format: 'date-time' }),
      editedAt: str({ format: 'date-time', description: 'v1.1: when the text was last edited' }),
      deleted: bool({ description: 'v1.1: a tombstone (text empty, no reactions, mentions or reply); the seq stays' }),
      replyTo: obj(
        {
          seq: seq(1),
          sender: { oneOf: [ref('UserRef'), { type: 'null' }] },
          text: str({ maxLength: 200, description: 'empty once the answered message is deleted' }),
          deleted: bool({ const: true, description: 'the answered message was deleted since: its text is gone from the quote too (show "deleted message")' }),
        },
        ['seq', 'sender', 'text'],
        { description: 'v1.1: the answered message as it was (first 200 characters); a delete of it empties the quote (a message.updated of the reply)' },
      ),
      mentions: { type: 'array', items: ref('UserRef'), description: 'v1.1: members named as @username' },
      reactions: {
        type: 'array',
        description: 'v1.1: per emoji in order of first use',
        items: obj({ emoji: str(), count: int({ minimum: 1 }), userIds: { type: 'array', items: uuid(), maxItems: 50 } }, ['emoji', 'count', 'userIds']),
      },
    },
    ['id', 'channelId', 'seq', 'rev', 'kind', 'sender', 'text', 'clientMsgId', 'createdAt', 'deleted', 'mentions', 'reactions'],
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
      headRev: int({ minimum: 0, description: 'v1.1: the last rev of the channel' }),
      lastReadSeq: seq(0),
      unreadCount: int({ minimum: 0, description: 'messages after lastReadSeq, deleted ones left out' }),
      mentionCount: int({ minimum: 0, description: 'v1.1: unread messages that mention you' }),
      accepted: {
        type: 'boolean',
        description: 'false while this is a request you have not accepted (a DM someone opened with you, a channel someone added you to); post in it, read a channel, or POST /channels/{id}/accept',
      },
      muted: bool({ description: 'true while you muted it (POST /channels/{id}/mute): no notification.needed webhook event (mobile push) for you here' }),
      topic: { type: ['string', 'null'], maxLength: 250, description: "the channel's topic; null when none, and for DMs" },
      archived: bool({ description: 'true once the owner archived the channel: read-only (sends, joins, edits and changes answer forbidden, details.reason archived)' }),
    },
    ['channelId', 'kind', 'name', 'lastMessage', 'headSeq', 'headRev', 'lastReadSeq', 'unreadCount', 'mentionCount', 'accepted', 'muted', 'topic', 'archived'],
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
    data: strict({ channelId: uuidIn(), to: str({ maxLength: 32, description: 'a username' }), text, clientMsgId, replyToSeq: seq(1, { description: 'v1.1: answer this message of the same channel' }), ...refField }, ['text', 'clientMsgId'], {
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
    summary:
      'Resume: for each channel (1 to 500) the last seq seen, or (v1.1) {seq, rev}: the last seq and the highest rev received in sync pages; ' +
      'one sync.result per channel, repeat with the highest seq and rev received while hasMore. A channel you may not read answers an error ' +
      'with details.channelId; an empty channels answers invalid_payload.',
    data: strict(
      {
        channels: {
          type: 'object',
          minProperties: 1,
          maxProperties: 500,
          propertyNames: { format: 'uuid', pattern: UUID_PATTERN },
          additionalProperties: { oneOf: [seq(0), strict({ seq: seq(0), rev: seq(0) }, ['seq'])] },
          description: 'channelId → the last seq the client has, or {seq, rev}',
        },
        limit: int({ minimum: 1, maximum: 200, default: 200, description: 'messages (and changes) per sync.result' }),
        ...refField,
      },
      ['channels'],
    ),
  },
  'message.edit': {
    summary: 'v1.1: change the text of your own message. Answered by message.updated (with your ref), which every member connection gets too.',
    data: strict({ channelId: uuidIn(), seq: seq(1), text, ...refField }, ['channelId', 'seq', 'text']),
  },
  'message.delete': {
    summary: "v1.1: delete a message (yours; any, for the channel's owner and admins): it becomes a tombstone. Answered by message.updated.",
    data: strict({ channelId: uuidIn(), seq: seq(1), ...refField }, ['channelId', 'seq']),
  },
  'reaction.add': {
    summary: `v1.1: react to a message (at most ${MAX_REACTION_EMOJI} different emoji per message); idempotent. Answered by message.updated.`,
    data: strict({ channelId: uuidIn(), seq: seq(1), emoji, ...refField }, ['channelId', 'seq', 'emoji']),
  },
  'reaction.remove': {
    summary: 'v1.1: take your reaction back; idempotent. Answered by message.updated.',
    data: strict({ channelId: uuidIn(), seq: seq(1), emoji, ...refField }, ['channelId', 'seq', 'emoji']),
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
  'message.new': { summary: 'A new message, to every connection of every member, in seq order per channel (and in rev order with message.updated).', data: obj({ message: ref('Message') }, ['message']) },
  'message.updated': {
    summary:
      'v1.1: a message changed (edit, delete, reaction): its whole current state, to every connection of every member, in rev order with message.new. ' +
      'The connection that asked gets it with its ref; a change that changes nothing (a retry) is answered to the asker only.',
    data: obj({ message: ref('Message'), ...echoedRef }, ['message']),
  },
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
  'member.joined': {
    summary: 'Someone joined a channel you are in; `by` when someone else added them (an invitation).',
    data: obj({ channelId: uuid(), user: ref('UserRef'), by: { ...ref('UserRef'), description: 'who added them, when not themselves' } }, ['channelId', 'user']),
  },
  'member.left': {
    summary: 'Someone left a channel you are in; `by` when an owner or admin removed them.',
    data: obj({ channelId: uuid(), user: ref('UserRef'), by: { ...ref('UserRef'), description: 'who removed them, when not themselves' } }, ['channelId', 'user']),
  },
  'channel.updated': {
    summary: 'An owner or admin renamed the channel, changed its topic or visibility, or the owner archived it: the conversation as you see it now, to every member connection.',
    data: obj({ conversation: ref('Conversation'), by: { ...ref('UserRef'), description: 'who changed it' } }, ['conversation', 'by']),
  },
  'member.updated': {
    summary: "The owner changed a member's role; to every member connection.",
    data: obj({ channelId: uuid(), user: ref('UserRef'), role: str({ enum: ['owner', 'admin', 'member'] }), by: ref('UserRef') }, ['channelId', 'user', 'role', 'by']),
  },
  'conversation.hidden': {
    summary: 'You hid this DM (POST /channels/{id}/hide), on any connection: drop it from the list; its next message brings it back.',
    data: obj({ channelId: uuid() }, ['channelId']),
  },
  'channel.joined': { summary: 'Answer to channel.join.', data: obj({ conversation: ref('Conversation'), ...echoedRef }, ['conversation']) },
  'channel.left': { summary: 'Answer to channel.leave (also sent to your other connections); also to every connection of a member who was removed: access ends at once.', data: obj({ channelId: uuid(), ...echoedRef }, ['channelId']) },
  'sync.result': {
    summary:
      'Messages after the given seq, ascending, in their current state; with a rev (v1.1) also changes: the current state of the messages at or ' +
      'below the given seq changed after the given rev, ascending by rev (tombstones included). Changes come first: a page they fill has no ' +
      'messages. Repeat sync with the highest seq and rev received while hasMore.',
    data: obj(
      {
        channelId: uuid(),
        messages: { type: 'array', items: ref('Message') },
        changes: { type: 'array', items: ref('Message'), description: 'v1.1, when the sync gave a rev' },
        headSeq: int({ minimum: 0 }),
        headRev: int({ minimum: 0, description: 'v1.1, when the sync gave a rev' }),
        hasMore: bool(),
        ...echoedRef,
      },
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
            reason: str({ enum: [...FORBIDDEN_REASONS], description: 'forbidden: `archived` when the channel is archived (read-only)' }),
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
      version: '1.1',
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
