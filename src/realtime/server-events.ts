import type { ConversationView, PresenceStatus } from '../channels/conversation.mapper.js';
import type { MemberRole } from '../channels/membership.entity.js';
import type { ErrorCode } from '../common/app-error.js';
import type { MessageView } from '../messages/message.mapper.js';
import type { UserRef } from '../users/user.mapper.js';

/**
 * Every server-to-client event and its payload. Frames are built only through `frame()`, so a
 * wrong event name or payload fails to compile. The AsyncAPI document lists the same events and
 * a test keeps the two in step.
 */
export interface ServerEventMap {
  'session.ready': { user: UserRef; sessionId: string; heartbeatIntervalMs: number; conversations: ConversationView[] };
  'message.ack': { clientMsgId: string; message: MessageView; duplicate: boolean; ref?: string };
  'message.new': { message: MessageView };
  'message.updated': { message: MessageView; ref?: string };
  'conversation.update': { conversation: ConversationView; ref?: string };
  'presence.update': { user: UserRef; status: PresenceStatus; lastSeenAt: string | null };
  typing: { channelId: string; user: UserRef };
  /** `by`: who added or removed them, when it was not themselves. */
  'member.joined': { channelId: string; user: UserRef; by?: UserRef };
  'member.left': { channelId: string; user: UserRef; by?: UserRef };
  'channel.updated': { conversation: ConversationView; by: UserRef };
  'member.updated': { channelId: string; user: UserRef; role: MemberRole; by: UserRef };
  'conversation.hidden': { channelId: string };
  'channel.joined': { conversation: ConversationView; ref?: string };
  'channel.left': { channelId: string; ref?: string };
  'sync.result': { channelId: string; messages: MessageView[]; changes?: MessageView[]; headSeq: number; headRev?: number; hasMore: boolean; ref?: string };
  'history.result': { channelId: string; messages: MessageView[]; hasMore: boolean; ref?: string };
  pong: { serverTime: string; ref?: string };
  error: { code: ErrorCode; message: string; ref?: string; clientMsgId?: string; retryAfterMs?: number; details?: Record<string, unknown> };
}

export type ServerEvent = keyof ServerEventMap;

export const SERVER_EVENTS: ServerEvent[] = [
  'session.ready', 'message.ack', 'message.new', 'message.updated', 'conversation.update', 'presence.update', 'typing',
  'member.joined', 'member.left', 'channel.updated', 'member.updated', 'conversation.hidden', 'channel.joined', 'channel.left', 'sync.result', 'history.result', 'pong', 'error',
];

/** A handler's reply: the adapter serializes it and sends it to the asking connection. */
export interface Reply<K extends ServerEvent = ServerEvent> {
  event: K;
  data: ServerEventMap[K];
}

export const reply = <K extends ServerEvent>(event: K, data: ServerEventMap[K]): Reply<K> => ({ event, data });

/** A reply already serialized as the frame of event K (the adapter sends it as is). */
export type Serialized<K extends ServerEvent> = string & { readonly __frame?: K };

/** Serializes a frame once; fan-out sends the same string to every recipient. */
export function frame<K extends ServerEvent>(event: K, data: ServerEventMap[K]): string {
  return JSON.stringify({ event, data });
}

/**
 * A message's JSON, serialized once however many frames carry it (the sender's ack, message.new,
 * message.updated): kept beside the MessageView, which is never changed once made (a change makes
 * a new view, with a new rev), for as long as something holds the view.
 */
const messageJsonCache = new WeakMap<MessageView, string>();

export function messageJson(message: MessageView): string {
  let json = messageJsonCache.get(message);
  if (json === undefined) messageJsonCache.set(message, (json = JSON.stringify(message)));
  return json;
}

/** `frame('message.new', { message })`, the same bytes, from the message's cached JSON. */
export function messageNewFrame(message: MessageView): string {
  return `{"event":"message.new","data":{"message":${messageJson(message)}}}`;
}

/** `frame('message.updated', { message })`, the same bytes, from the message's cached JSON. */
export function messageUpdatedFrame(message: MessageView): string {
  return `{"event":"message.updated","data":{"message":${messageJson(message)}}}`;
}

/**
 * `frame('message.ack', data)`, the same bytes, with the message from its cached JSON (the
 * fan-out's message.new then costs no serialization of its own). Keys in the order of
 * ServerEventMap['message.ack']; a `ref` that is undefined is left out, as JSON.stringify does.
 */
export function messageAckFrame(data: ServerEventMap['message.ack']): string {
  const ref = data.ref === undefined ? '' : `,"ref":${JSON.stringify(data.ref)}`;
  return `{"event":"message.ack","data":{"clientMsgId":${JSON.stringify(data.clientMsgId)},"message":${messageJson(data.message)},"duplicate":${data.duplicate}${ref}}}`;
}
