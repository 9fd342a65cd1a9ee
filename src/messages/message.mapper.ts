import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { MAX_SEQ } from '../common/int-field.decorator.js';
import { ApiNullableRef } from '../common/api-nullable.decorator.js';
import { SYSTEM_USER_ID } from '../users/system-user.js';
import { UserRef } from '../users/user.mapper.js';

/**
 * A quoted reply's snapshot of the message it answers, taken when the reply was sent; when that
 * message is deleted, its text goes from the quotes too (`deleted`, the text empty).
 */
export class ReplyRef {
  @ApiProperty({ type: 'integer', minimum: 1, maximum: MAX_SEQ, example: 41 }) seq!: number;
  @ApiNullableRef(UserRef, { description: 'null for a system message' }) sender!: UserRef | null;
  @ApiProperty({ example: 'lunch at noon?', maxLength: 200, description: 'the first 200 characters of its text, as it was then; empty once that message is deleted' }) text!: string;
  @ApiPropertyOptional({ enum: [true], description: 'the answered message was deleted since (the text is empty): show "deleted message"' }) deleted?: true;
}

export class ReactionView {
  @ApiProperty({ example: '👍', description: 'one emoji, or a `:short_name:`' }) emoji!: string;
  @ApiProperty({ type: 'integer', minimum: 1, example: 2 }) count!: number;
  @ApiProperty({ type: [String], description: 'who reacted, the first 50 (ids)', example: ['7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11'] }) userIds!: string[];
}

/** The contract's Message: the one wire shape of a message, HTTP and WebSocket alike. */
export class MessageView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) channelId!: string;
  @ApiProperty({ type: 'integer', minimum: 1, maximum: MAX_SEQ, example: 42, description: 'per-channel sequence number: 1, 2, 3, ... with no gaps; never changes' }) seq!: number;
  @ApiProperty({
    type: 'integer', minimum: 1, example: 57,
    description: "the channel's revision at this message's last change (creation, edit, delete, reaction): the highest rev wins",
  })
  rev!: number;
  @ApiProperty({ enum: ['user', 'system'], description: '`system`: a notice posted by the server API, shown as such; its sender is null' }) kind!: 'user' | 'system';
  @ApiNullableRef(UserRef, { description: 'null for a system message' }) sender!: UserRef | null;
  @ApiProperty({ example: 'hello', maxLength: 4000, description: 'empty when the message was deleted' }) text!: string;
  @ApiProperty({ example: 'c-6f1e2d', minLength: 1, maxLength: 64 }) clientMsgId!: string;
  @ApiProperty({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' }) createdAt!: string;
  @ApiPropertyOptional({ format: 'date-time', example: '2026-11-22T10:02:00.000Z', description: 'when the text was last edited' }) editedAt?: string;
  @ApiProperty({ description: 'a tombstone: the text is empty, reactions, mentions and reply are gone, the seq stays' }) deleted!: boolean;
  @ApiPropertyOptional({ type: ReplyRef, description: 'the message this one answers (same channel)' }) replyTo?: ReplyRef;
  @ApiProperty({ type: [UserRef], description: 'members named as `@username` in the text' }) mentions!: UserRef[];
  @ApiProperty({ type: [ReactionView], description: 'in the order each emoji was first used' }) reactions!: ReactionView[];
}

export interface MessageRow {
  id: string;
  channel_id: string;
  seq: number | string;
  rev: number | string;
  sender_id: string;
  sender_username: string;
  text: string;
  client_msg_id: string;
  created_at: number | string;
  edited_at: number | string | null;
  deleted_at: number | string | null;
  reply_to: string | null;
  mentions: string | null;
  reactions: string | null;
}

const NONE: never[] = [];

/** Raw rows (SQLite numbers, PostgreSQL bigint strings) to the wire shape. */
export function rowToMessage(r: MessageRow): MessageView {
  const m: MessageView = {
    id: r.id,
    channelId: r.channel_id,
    seq: Number(r.seq),
    rev: Number(r.rev),
    // System messages are stored under the reserved system user; on the wire they name nobody.
    kind: r.sender_id === SYSTEM_USER_ID ? 'system' : 'user',
    sender: r.sender_id === SYSTEM_USER_ID ? null : { id: r.sender_id, username: r.sender_username },
    text: r.text,
    clientMsgId: r.client_msg_id,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    deleted: r.deleted_at !== null,
    // Most messages have none of these: skip the parse (and share one empty array, never mutated).
    mentions: r.mentions ? (JSON.parse(r.mentions) as UserRef[]) : NONE,
    reactions: r.reactions ? (JSON.parse(r.reactions) as ReactionView[]) : NONE,
  };
  if (r.edited_at !== null) m.editedAt = new Date(Number(r.edited_at)).toISOString();
  if (r.reply_to) m.replyTo = JSON.parse(r.reply_to) as ReplyRef;
  return m;
}

/** SELECT list matching MessageRow; `m` is messages, `u` the sender. */
export const MESSAGE_COLUMNS =
  'm.id, m.channel_id, m.seq, m.rev, m.sender_id, u.username AS sender_username, m.text, m.client_msg_id, m.created_at, ' +
  'm.edited_at, m.deleted_at, m.reply_to, m.mentions, m.reactions';

/** The JSON kept in the row for a list, or null for an empty one (most rows). */
export const jsonOrNull = (list: unknown[] | undefined): string | null => (list && list.length > 0 ? JSON.stringify(list) : null);
