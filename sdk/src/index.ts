export { ParleyClient, newClientMsgId } from './client.js';
export type {
  ConnectionState, MemberEvent, ParleyClientOptions, ParleyEvents, SendInput, StateChange, WebSocketConstructor, WebSocketLike,
} from './client.js';
export { ParleyError, login, refreshingToken, register, tokenExpiry } from './http.js';
export type { AuthResult, FetchLike } from './http.js';
export type {
  ClientEvent, ClientEventMap, Conversation, ErrorCode, ErrorFrame, HistoryResult, Message, PresenceUpdate, ServerEvent, ServerEventMap,
  SessionReady, SyncResult, TypingEvent, UserRef,
} from './protocol.js';
