import { Injectable } from '@nestjs/common';
import type { ChannelState } from '../channels/channel-state.store.js';
import type { MessageView } from '../messages/message.mapper.js';
import type { UserRef } from '../users/user.mapper.js';

/**
 * What the services announce after a change is committed. The realtime layer turns these into
 * frames; services never know about sockets. Listeners run synchronously, in emit order, which
 * is commit order: that is what keeps `message.new` in seq order.
 *
 * `origin` is an opaque id of the connection that asked for the change (if any): it already got
 * its answer, so fan-out skips it for the frames that would repeat that answer.
 */
export interface DomainEventMap {
  /** New messages of one committed batch, in seq order per channel. */
  'messages.created': { messages: { message: MessageView; channel: ChannelState }[] };
  'read.moved': { channel: ChannelState; userId: string; origin?: string };
  'member.joined': { channel: ChannelState; user: UserRef; origin?: string };
  'member.left': { channel: ChannelState; user: UserRef; origin?: string };
  /** A conversation appeared in these users' lists (a new DM, a channel created with them). */
  'conversation.created': { channel: ChannelState; userIds: string[]; origin?: string };
}

type Listener<K extends keyof DomainEventMap> = (payload: DomainEventMap[K]) => void;

@Injectable()
export class DomainEvents {
  private readonly listeners = new Map<keyof DomainEventMap, Listener<never>[]>();

  on<K extends keyof DomainEventMap>(event: K, listener: Listener<K>): void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as Listener<never>);
    this.listeners.set(event, list);
  }

  emit<K extends keyof DomainEventMap>(event: K, payload: DomainEventMap[K]): void {
    for (const l of this.listeners.get(event) ?? []) (l as Listener<K>)(payload);
  }
}
