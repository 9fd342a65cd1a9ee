import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ApiNullableRef } from '../common/api-nullable.decorator.js';
import { MessageView } from '../messages/message.mapper.js';
import { type ChannelState, isArchived, mentionCount, unreadCount } from './channel-state.store.js';

export type PresenceStatus = 'online' | 'offline';

export class PeerView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'bob' }) username!: string;
  @ApiProperty({ enum: ['online', 'offline'], description: "`offline` too when you do not share presence with them (the DM is not accepted by both of you, or one of you blocked the other)" })
  status!: PresenceStatus;
}

/** The contract's Conversation: one channel as one user sees it. */
export class ConversationView {
  @ApiProperty({ format: 'uuid' }) channelId!: string;
  @ApiProperty({ enum: ['dm', 'channel'] }) kind!: 'dm' | 'channel';
  @ApiProperty({ example: 'general', description: "channel name, or the peer's username for a DM" }) name!: string;
  @ApiPropertyOptional({ type: PeerView, description: 'DMs only' }) peer?: PeerView;
  @ApiNullableRef(MessageView, { description: 'the latest message, or null when there is none' }) lastMessage!: MessageView | null;
  @ApiProperty({ type: 'integer', minimum: 0, example: 42 }) headSeq!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 40 }) lastReadSeq!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 57, description: 'the last rev: moves with every new message and every change of one (protocol v1.1)' }) headRev!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 2, description: 'messages with seq > lastReadSeq not sent by this user, deleted ones left out' }) unreadCount!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 1, description: 'unread messages that mention this user' }) mentionCount!: number;
  @ApiProperty({
    description:
      'false while this is a request: a DM someone opened with you, or a channel someone added you to, that you have ' +
      'not accepted yet (post in it, read a channel, or POST /channels/{id}/accept). No presence flows through it until then.',
  })
  accepted!: boolean;
  @ApiProperty({ description: 'true while you muted it (POST /channels/{id}/mute): no notification.needed webhook event (mobile push) for you here' }) muted!: boolean;
  @ApiProperty({ type: String, nullable: true, maxLength: 250, description: "the channel's topic; null when none, and for DMs" }) topic!: string | null;
  @ApiProperty({ description: 'true once the owner archived the channel: read-only (sends, joins, edits and changes refused)' }) archived!: boolean;
}

/**
 * Personalizes a channel for one user. unreadCount is headSeq - lastReadSeq less the deleted
 * messages above the marker: exact, because a user's own messages always sit at or below their
 * read marker (sending moves it). `statusOf` says what this user may see of the peer's presence.
 */
export function toConversation(
  state: ChannelState,
  userId: string,
  statusOf: (userId: string) => PresenceStatus,
): ConversationView {
  const lastReadSeq = state.members.get(userId)?.lastReadSeq ?? state.headSeq;
  const base = {
    channelId: state.id,
    kind: state.kind,
    lastMessage: state.lastMessage,
    headSeq: state.headSeq,
    headRev: state.headRev,
    lastReadSeq,
    unreadCount: unreadCount(state, lastReadSeq),
    mentionCount: mentionCount(state, userId, lastReadSeq),
    accepted: (state.members.get(userId)?.acceptedAt ?? null) !== null,
    muted: (state.members.get(userId)?.mutedAt ?? null) !== null,
    topic: state.topic ?? null,
    archived: isArchived(state),
  };
  if (state.kind === 'dm') {
    const peer = [...state.members.values()].find((m) => m.userId !== userId) ?? state.members.get(userId);
    const peerView = peer ? { id: peer.userId, username: peer.username, status: statusOf(peer.userId) } : undefined;
    return { ...base, name: peerView?.username ?? '', peer: peerView };
  }
  return { ...base, name: state.name ?? '' };
}

/** Most recent activity first: the last message, or the channel's creation when it has none. */
export function byRecentActivity(a: ChannelState, b: ChannelState): number {
  const at = (s: ChannelState) => (s.lastMessage ? Date.parse(s.lastMessage.createdAt) : s.createdAt);
  return at(b) - at(a);
}
