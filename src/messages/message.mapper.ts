import { ApiProperty } from '@nestjs/swagger';
import { MAX_SEQ } from '../common/int-field.decorator.js';
import { ApiNullableRef } from '../common/api-nullable.decorator.js';
import { SYSTEM_USER_ID } from '../users/system-user.js';
import { UserRef } from '../users/user.mapper.js';

/** The contract's Message: the one wire shape of a message, HTTP and WebSocket alike. */
export class MessageView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) channelId!: string;
  @ApiProperty({ type: 'integer', minimum: 1, maximum: MAX_SEQ, example: 42, description: 'per-channel sequence number: 1, 2, 3, ... with no gaps' }) seq!: number;
  @ApiProperty({ enum: ['user', 'system'], description: '`system`: a notice posted by the server API, shown as such; its sender is null' }) kind!: 'user' | 'system';
  @ApiNullableRef(UserRef, { description: 'null for a system message' }) sender!: UserRef | null;
  @ApiProperty({ example: 'hello', minLength: 1, maxLength: 4000 }) text!: string;
  @ApiProperty({ example: 'c-6f1e2d', minLength: 1, maxLength: 64 }) clientMsgId!: string;
  @ApiProperty({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' }) createdAt!: string;
}

export interface MessageRow {
  id: string;
  channel_id: string;
  seq: number | string;
  sender_id: string;
  sender_username: string;
  text: string;
  client_msg_id: string;
  created_at: number | string;
}

/** Raw rows (SQLite numbers, PostgreSQL bigint strings) to the wire shape. */
export function rowToMessage(r: MessageRow): MessageView {
  return {
    id: r.id,
    channelId: r.channel_id,
    seq: Number(r.seq),
    // System messages are stored under the reserved system user; on the wire they name nobody.
    kind: r.sender_id === SYSTEM_USER_ID ? 'system' : 'user',
    sender: r.sender_id === SYSTEM_USER_ID ? null : { id: r.sender_id, username: r.sender_username },
    text: r.text,
    clientMsgId: r.client_msg_id,
    createdAt: new Date(Number(r.created_at)).toISOString(),
  };
}

/** SELECT list matching MessageRow; `m` is messages, `u` the sender. */
export const MESSAGE_COLUMNS =
  'm.id, m.channel_id, m.seq, m.sender_id, u.username AS sender_username, m.text, m.client_msg_id, m.created_at';
