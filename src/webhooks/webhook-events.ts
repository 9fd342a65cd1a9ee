import { randomUUID } from 'node:crypto';
import type { MessageView } from '../messages/message.mapper.js';
import type { UserRef } from '../users/user.mapper.js';

/** Every webhook event type (docs/webhooks.md describes each `data`). */
export const WEBHOOK_EVENT_TYPES = [
  'message.created', 'message.updated', 'member.joined', 'member.left', 'channel.created', 'channel.updated', 'user.created',
  'notification.needed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * One event to deliver. `key` orders delivery: events of one key go out one at a time in the
 * order they were committed, and a failing one holds back the later ones of its key only. It is
 * the channel's id for everything that happens in a channel, the user's id for user events.
 */
export interface WebhookEvent {
  type: WebhookEventType;
  key: string;
  data: Record<string, unknown>;
}

/** A row of `webhook_outbox` as written: the body is fixed at append, so every retry sends the same bytes. */
export interface OutboxRow {
  eventId: string;
  type: WebhookEventType;
  key: string;
  body: string;
  createdAt: number;
}

/** The JSON a receiver gets: {id, type, createdAt, data}. `id` is also the X-Parley-Delivery header. */
export function toOutboxRow(event: WebhookEvent, now: number): OutboxRow {
  const eventId = randomUUID();
  const createdAt = new Date(now).toISOString();
  return { eventId, type: event.type, key: event.key, body: JSON.stringify({ id: eventId, type: event.type, createdAt, data: event.data }), createdAt: now };
}

// The events, one builder each, so every write path sends the same shape.
export const webhookEvents = {
  messageCreated: (message: MessageView): WebhookEvent => ({ type: 'message.created', key: message.channelId, data: { message } }),
  /** For #9 (edits, deletes, reactions): the message's current state. */
  messageUpdated: (message: { channelId: string }): WebhookEvent => ({ type: 'message.updated', key: message.channelId, data: { message } }),
  /** `by`: who added them, when it was someone else (channel administration). */
  memberJoined: (channelId: string, user: UserRef, by?: UserRef): WebhookEvent => ({ type: 'member.joined', key: channelId, data: { channelId, user, ...(by ? { by } : {}) } }),
  /** `by`: who removed them, when it was someone else. */
  memberLeft: (channelId: string, user: UserRef, by?: UserRef): WebhookEvent => ({ type: 'member.left', key: channelId, data: { channelId, user, ...(by ? { by } : {}) } }),
  channelCreated: (channel: WebhookChannel, createdBy: UserRef | null, members: UserRef[]): WebhookEvent => ({
    type: 'channel.created',
    key: channel.id,
    data: { channel, createdBy, members },
  }),
  /** For channel administration: the channel as it is now, and who changed it. */
  channelUpdated: (channel: WebhookChannel & Record<string, unknown>, by: UserRef | null): WebhookEvent => ({ type: 'channel.updated', key: channel.id, data: { channel, by } }),
  userCreated: (user: UserRef & Record<string, unknown>): WebhookEvent => ({ type: 'user.created', key: user.id, data: { user } }),
};

/** A channel as webhook events show it. */
export interface WebhookChannel {
  id: string;
  kind: 'dm' | 'channel';
  name: string | null;
  visibility: 'public' | 'private';
  createdAt: string;
}
