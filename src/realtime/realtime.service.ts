import { Injectable } from '@nestjs/common';
import { ChannelsService } from '../channels/channels.service.js';
import { AppError } from '../common/app-error.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MessagesService } from '../messages/messages.service.js';
import { PresenceDirectory } from '../presence/presence-directory.js';
import { toUserRef } from '../users/user.mapper.js';
import type { Connection } from './connection.js';
import type { ChannelFrameDto, FrameDto, HistoryFrameDto, JoinFrameDto, ReadFrameDto, SendFrameDto, SyncFrameDto } from './dto/frames.dto.js';
import { frame, Reply, reply } from './server-events.js';

/** Typing indicators per user and channel go out at most this often. */
const TYPING_THROTTLE_MS = 1000;
/** Channels one `sync` frame may list. */
const MAX_SYNC_CHANNELS = 500;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  ) {}

  async send(conn: Connection, dto: SendFrameDto): Promise<Reply<'message.ack'>> {
    const outcome = await this.messages.send(conn.user, dto);
    return reply('message.ack', withRef({ clientMsgId: dto.clientMsgId, message: outcome.message, duplicate: outcome.duplicate }, dto.ref));
  }

  async join(conn: Connection, dto: JoinFrameDto): Promise<Reply<'channel.joined'>> {
    if ((dto.name === undefined) === (dto.channelId === undefined)) {
      throw new AppError('invalid_payload', 'give exactly one of name or channelId');
    }
    const { conversation } = dto.name !== undefined
      ? await this.channels.joinByName(conn.user, dto.name, conn.id)
      : await this.channels.join(conn.user, dto.channelId!, conn.id);
    return reply('channel.joined', withRef({ conversation }, dto.ref));
  }

  async leave(conn: Connection, dto: ChannelFrameDto): Promise<Reply<'channel.left'>> {
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
    await this.channels.requireMember(dto.channelId, conn.user.id);
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
   * still answer.
   */
  async sync(conn: Connection, dto: SyncFrameDto): Promise<void> {
    const entries = Object.entries(dto.channels);
    const bad = entries.filter(([id, seq]) => !UUID.test(id) || !Number.isInteger(seq) || seq < 0).map(([id]) => id);
    if (entries.length > MAX_SYNC_CHANNELS || bad.length > 0) {
      throw new AppError('invalid_payload', `channels must map up to ${MAX_SYNC_CHANNELS} channel ids to non-negative integer seqs`, {
        fields: { channels: bad.slice(0, 20) },
      });
    }
    for (const [channelId, lastSeq] of entries) {
      try {
        const page = await this.messages.sync(conn.user, channelId, lastSeq);
        conn.send(frame('sync.result', withRef(page, dto.ref)));
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        conn.send(frame('error', withRef({ code: err.code, message: err.message, details: { channelId } }, dto.ref)));
      }
    }
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
