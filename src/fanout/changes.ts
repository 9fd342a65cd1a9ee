import type { ChannelVisibility } from '../channels/channel.entity.js';
import type { MemberState } from '../channels/channel-state.store.js';
import type { MemberRole } from '../channels/membership.entity.js';
import type { PresenceStatus } from '../channels/conversation.mapper.js';
import type { MessageView } from '../messages/message.mapper.js';
import type { UserRef } from '../users/user.mapper.js';

/**
 * What happened, once it is committed: the changes that the services publish and every
 * instance applies to its own in-memory state and renders for its own connections. Plain data
 * (ids, not objects), so they cross instances as JSON.
 *
 * `origin` is the id of the local connection that asked for the change, when there is one: it
 * already has its answer, so fan-out skips it for the frames that would repeat it. Connection ids
 * are per process, so the bus never carries `origin` to other instances.
 */
export interface ChangeMap {
  /** The new messages of one committed batch, in seq order per channel. */
  'messages.created': { messages: MessageView[] };
  /**
   * Stored messages of one committed batch that changed (edit, delete, reaction), each in its new
   * state, ascending by rev. `origin`: by rev, the local connection that asked for the change and
   * its frame's `ref`, so its answer is the fan-out's own frame (in rev order) with the ref.
   */
  'messages.updated': { messages: MessageView[]; origin?: Record<number, ChangeOrigin> };
  'read.moved': { channelId: string; userId: string; seq: number; origin?: string };
  /** `by`: who added them, when it was not themselves (an invitation). */
  'member.joined': { channelId: string; member: MemberState; by?: UserRef; origin?: string };
  /** `by`: who removed them, when they did not leave by themselves. */
  'member.left': { channelId: string; user: UserRef; by?: UserRef; origin?: string };
  /** A conversation appeared in these users' lists (a new DM, a channel created with them). */
  'conversation.created': { channelId: string; userIds: string[]; origin?: string };
  'typing': { channelId: string; user: UserRef };
  /** A user came online (first connection anywhere) or went offline (last one, after the grace). */
  'presence.changed': { user: UserRef; status: PresenceStatus; lastSeenAt: string };
  /**
   * These sessions of a user ended (logout, a session ended from the list, a password change, a
   * reused refresh token): every instance adds them to its revoked set and closes their sockets.
   * Always the ids, never "all but one": an instance cannot tell a user's sessions from memory.
   */
  'session.ended': { userId: string; sessionIds: string[] };
  /**
   * A member accepted a conversation someone else put them in (posted, read it, or said so).
   * `quiet`: the change that follows (the message, the moved read marker) brings the members'
   * conversation.update, so this one sends none of its own.
   */
  'member.accepted': { channelId: string; userId: string; acceptedAt: number; quiet?: boolean; origin?: string };
  /** `blocker` blocked (`blocking`) or unblocked `blocked`. */
  'block.changed': { blocker: UserRef; blocked: UserRef; blocking: boolean };
  /** A channel's administered fields after a rename, topic or visibility change, or its archive: all of them, as committed. */
  'channel.updated': { channelId: string; name: string | null; topic: string | null; visibility: ChannelVisibility; archivedAt: number | null; by: UserRef };
  /** The owner gave `user` this role in the channel. */
  'member.role': { channelId: string; user: UserRef; role: MemberRole; by: UserRef };
  /** A member hid a DM at this head: it leaves their list until a message comes after it. */
  'member.hidden': { channelId: string; userId: string; hiddenSeq: number };
  /** A member muted (mutedAt) or unmuted (null) a conversation: their own devices' lists show it. */
  'member.muted': { channelId: string; userId: string; mutedAt: number | null };
}

export interface ChangeOrigin {
  connectionId: string;
  ref?: string;
}

export type ChangeName = keyof ChangeMap;

export const CHANGE_NAMES: ChangeName[] = [
  'messages.created', 'messages.updated', 'read.moved', 'member.joined', 'member.left', 'conversation.created', 'typing', 'presence.changed',
  'session.ended', 'member.accepted', 'block.changed', 'channel.updated', 'member.role', 'member.hidden', 'member.muted',
];

/** Where a change comes from: this instance, or another one through the bus. */
export interface ChangeSource {
  local: boolean;
}
