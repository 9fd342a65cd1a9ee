import { Injectable } from '@nestjs/common';
import { ChannelStateStore } from '../channels/channel-state.store.js';
import { ChannelsService } from '../channels/channels.service.js';
import { AppError } from '../common/app-error.js';
import { MAX_SEQ } from '../common/int-field.decorator.js';
import { UUID_ALL } from '../common/uuid.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MessagesService } from '../messages/messages.service.js';
import { PresenceDirectory } from '../presence/presence-directory.js';
import { HttpRateLimiter } from '../rate-limit/http-rate-limiter.js';
import { toUserRef } from '../users/user.mapper.js';
import type { Connection } from './connection.js';
import type { ChangeFrameDto, ChannelFrameDto, FrameDto, HistoryFrameDto, JoinFrameDto, ReadFrameDto, SendFrameDto, SyncFrameDto } from './dto/frames.dto.js';
import { frame, messageAckFrame, Reply, reply, type Serialized } from './server-events.js';

/** Typing indicators per user and channel go out at most this often. */
const TYPING_THROTTLE_MS = 1000;
/** Channels one `sync` frame may list. */
const MAX_SYNC_CHANNELS = 500;

/** A sync cursor: a bare seq (v1), or {seq, rev} (v1.1); null when it is neither. */
function cursorOf(v: unknown): { seq: number; rev?: number } | null {
  const valid = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= MAX_SEQ;
  if (valid(v)) return { seq: v };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (Object.keys(o).some((k) => k !== 'seq' && k !== 'rev') || !valid(o.seq) || (o.rev !== undefined && !valid(o.rev))) return null;
  return o.rev === undefined ? { seq: o.seq } : { seq: o.seq, rev: o.rev };
}

const withRef = <T extends object>(data: T, ref: string | undefined): T => (ref === undefined ? data : { ...data, ref });

/** What each client frame does, on top of the services; the gateway only routes to it. */
@Injectable()
export class RealtimeService {
  private readonly lastTyping = new Map<string, number>();

  constructor(
    private readonly messages: MessagesService,
    private readonly channels: ChannelsService,
    private readonly bus: FanoutBus,
    private readonly presence: PresenceDirectory,
    private readonly store: ChannelStateStore,
    private readonly limiter: HttpRateLimiter,
  ) {}

  /**
   * The ack comes back serialized (the adapter sends a string as is): its message is the same
   * MessageView the fan-out sends, so the message's JSON is built once for both (messageJson).
   */
  send(conn: Connection, dto: SendFrameDto): Promise<Serialized<'message.ack'>> {
    // No async function here: see ChannelsService.postableNow for why the send path avoids awaits.
    const outcome = this.limiter.limitsWrites
      ? this.limiter.checkWrite(conn.user.id).then(() => this.messages.send(conn.user, dto))
      : this.messages.send(conn.user, dto);
    return outcome.then(
      (o) => messageAckFrame(withRef({ clientMsgId: dto.clientMsgId, message: o.message, duplicate: o.duplicate }, dto.ref)) as Serialized<'message.ack'>,
    );
  }

  async join(conn: Connection, dto: JoinFrameDto): Promise<Reply<'channel.joined'>> {
    if ((dto.name === undefined) === (dto.channelId === undefined)) {
      throw new AppError('invalid_payload', 'give exactly one of name or channelId');
    }
    await this.limiter.checkWrite(conn.user.id);
    const { conversation } = dto.name !== undefined
      ? await this.channels.joinByName(conn.user, dto.name, conn.id)
      : await this.channels.join(conn.user, dto.channelId!, conn.id);
    return reply('channel.joined', withRef({ conversation }, dto.ref));
  }

  async leave(conn: Connection, dto: ChannelFrameDto): Promise<Reply<'channel.left'>> {
    await this.limiter.checkWrite(conn.user.id);
    await this.channels.leave(conn.user, dto.channelId, conn.id);
    return reply('channel.left', withRef({ channelId: dto.channelId }, dto.ref));
  }

  async read(conn: Connection, dto: ReadFrameDto): Promise<Reply<'conversation.update'>> {
    const conversation = await this.messages.markRead(conn.user, dto.channelId, dto.seq, conn.id);
    return reply('conversation.update', withRef({ conversation }, dto.ref));
  }

  /**
   * Throttled per user and channel: a keystroke storm costs the others one frame a second, also
   * when the user types on devices connected to different instances (the directory decides then).
   */
  async typing(conn: Connection, dto: ChannelFrameDto): Promise<void> {
    await this.channels.assertCanPost(await this.channels.requireMember(dto.channelId, conn.user.id), conn.user.id);
    const key = `${conn.user.id}:${dto.channelId}`;
    const now = Date.now();
    if (now - (this.lastTyping.get(key) ?? 0) < TYPING_THROTTLE_MS) return;
    this.lastTyping.set(key, now);
    if (this.lastTyping.size > 10_000) this.forgetOldTyping(now);
    if (!(await this.presence.allowTyping(conn.user.id, dto.channelId, TYPING_THROTTLE_MS))) return;
    this.bus.publish('typing', { channelId: dto.channelId, user: toUserRef(conn.user) });
  }

  /**
   * Resume: one `sync.result` per listed channel with what came after the client's last seq.
   * A channel the client may not read gets its own `error` (with the channelId) and the others
   * still answer. A frame that lists no channel would get no answer at all: it is refused.
   *
   * Cheap to abuse no more: ids that are no channel are found with one query for the whole frame
   * and remembered (no query per id, now or when listed again), and the loop stops as soon as the
   * connection is closing (nobody would read the rest). It yields between channels, so a long
   * sync neither holds up other clients nor misses its own socket's close.
   */
  async sync(conn: Connection, dto: SyncFrameDto): Promise<void> {
    const entries = Object.entries(dto.channels).map(([id, since]) => [id, cursorOf(since)] as const);
    const bad = entries.filter(([id, since]) => !UUID_ALL.test(id) || since === null).map(([id]) => id);
    if (entries.length === 0 || entries.length > MAX_SYNC_CHANNELS || bad.length > 0) {
      throw new AppError('invalid_payload', `channels must map 1 to ${MAX_SYNC_CHANNELS} channel ids to a seq, or to {seq, rev}: integers from 0 to ${MAX_SEQ}`, {
        fields: { channels: entries.length === 0 ? ['channels must list at least one channel'] : bad.slice(0, 20) },
      });
    }
    await this.store.learnMissing(entries.map(([id]) => id));
    for (const [channelId, since] of entries) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!conn.isOpen()) return;
      try {
        const page = await this.messages.sync(conn.user, channelId, since!, dto.limit);
        conn.send(frame('sync.result', withRef(page, dto.ref)));
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        conn.send(frame('error', withRef({ code: err.code, message: err.message, details: { channelId } }, dto.ref)));
      }
    }
  }

  /**
   * Edits, deletes and reactions: a change that changes something is answered by the fan-out's
   * own `message.updated`, which carries this frame's ref to this connection, in rev order with
   * everything else; one that changes nothing (a retry) is answered here with the message as it is.
   */
  async change(conn: Connection, dto: ChangeFrameDto, op: 'edit' | 'delete' | 'react' | 'unreact'): Promise<Reply<'message.updated'> | undefined> {
    await this.limiter.checkWrite(conn.user.id);
    const asker = { connectionId: conn.id, ref: dto.ref };
    const outcome =
      op === 'edit' ? await this.messages.edit(conn.user, dto.channelId, dto.seq, dto.text!, asker)
      : op === 'delete' ? await this.messages.remove(conn.user, dto.channelId, dto.seq, asker)
      : await this.messages.react(conn.user, dto.channelId, dto.seq, dto.emoji!, op === 'react', asker);
    return outcome.changed ? undefined : reply('message.updated', withRef({ message: outcome.message }, dto.ref));
  }

  async history(conn: Connection, dto: HistoryFrameDto): Promise<Reply<'history.result'>> {
    const page = await this.messages.history(conn.user, dto.channelId, { before: dto.beforeSeq, limit: dto.limit });
    return reply('history.result', withRef(page, dto.ref));
  }

  pong(dto: FrameDto): Reply<'pong'> {
    return reply('pong', withRef({ serverTime: new Date().toISOString() }, dto.ref));
  }

  private forgetOldTyping(now: number): void {
    for (const [key, at] of this.lastTyping) if (now - at >= TYPING_THROTTLE_MS) this.lastTyping.delete(key);
  }
}
