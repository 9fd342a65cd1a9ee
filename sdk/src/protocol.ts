/**
 * The wire types, taken from the server's own definitions (type-only imports: nothing of the
 * server is bundled). `ServerEventMap` is the map the server builds every frame from, so a field
 * the server adds or changes shows up here at the next build, and the SDK stops compiling if it
 * relies on something the server no longer sends. The published `index.d.ts` has them inlined
 * (dts-bundle-generator, see sdk/README.md).
 */
import type { ServerEventMap } from '../../src/realtime/server-events.js';
import type {
  ChannelFrameDto, EditFrameDto, HistoryFrameDto, JoinFrameDto, ReactionFrameDto, ReadFrameDto, SendFrameDto, SyncFrameDto,
} from '../../src/realtime/dto/frames.dto.js';
import type { ErrorCode } from '../../src/common/app-error.js';

export type { ServerEventMap, ErrorCode };
export type ServerEvent = keyof ServerEventMap;

/** The contract's Message. */
export type Message = ServerEventMap['message.new']['message'];
/** The contract's Conversation, as one user sees it. */
export type Conversation = ServerEventMap['session.ready']['conversations'][number];
export type UserRef = ServerEventMap['session.ready']['user'];
export type PresenceUpdate = ServerEventMap['presence.update'];
export type TypingEvent = ServerEventMap['typing'];
export type SessionReady = ServerEventMap['session.ready'];
export type SyncResult = ServerEventMap['sync.result'];
export type HistoryResult = ServerEventMap['history.result'];
export type ErrorFrame = ServerEventMap['error'];
export type Reaction = Message['reactions'][number];
export type ReplyRef = NonNullable<Message['replyTo']>;

type WithoutRef<T> = Omit<T, 'ref'>;

/** What the client sends, per event (the server's frame DTOs, minus the class machinery). */
export interface ClientEventMap {
  'message.send': WithoutRef<SendFrameDto> & { ref?: string };
  'channel.join': WithoutRef<JoinFrameDto> & { ref?: string };
  'channel.leave': WithoutRef<ChannelFrameDto> & { ref?: string };
  read: WithoutRef<ReadFrameDto> & { ref?: string };
  typing: WithoutRef<ChannelFrameDto>;
  sync: Omit<SyncFrameDto, 'ref' | 'limit'> & { limit?: number; ref?: string };
  'message.edit': Pick<EditFrameDto, 'channelId' | 'seq' | 'text'> & { ref?: string };
  'message.delete': Pick<ChannelFrameDto, 'channelId'> & { seq: number; ref?: string };
  'reaction.add': Pick<ReactionFrameDto, 'channelId' | 'seq' | 'emoji'> & { ref?: string };
  'reaction.remove': Pick<ReactionFrameDto, 'channelId' | 'seq' | 'emoji'> & { ref?: string };
  history: Omit<HistoryFrameDto, 'ref' | 'limit'> & { limit?: number; ref?: string };
  ping: { ref?: string };
}
export type ClientEvent = keyof ClientEventMap;
