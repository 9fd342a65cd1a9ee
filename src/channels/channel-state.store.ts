import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource } from 'typeorm';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MESSAGE_COLUMNS, MessageRow, MessageView, rowToMessage } from '../messages/message.mapper.js';
import { BlocksService } from '../users/blocks.service.js';
import type { ChannelKind, ChannelVisibility } from './channel.entity.js';
import type { MemberRole } from './membership.entity.js';

export interface MemberState {
  userId: string;
  username: string;
  role: MemberRole;
  lastReadSeq: number;
  joinedAt: number;
  /** Null while the conversation is a request the member has not accepted (see Membership). */
  acceptedAt: number | null;
  /** DMs: hidden by this member while the head is at or below it (see Membership.hiddenSeq). */
  hiddenSeq?: number | null;
  /** Since when the member muted the conversation (no notification.needed); null or absent: not muted. */
  mutedAt?: number | null;
}

/** A membership row as the member look-ups read it (numbers may come back as strings from PostgreSQL). */
type MemberRow = { user_id: string; username: string; role: MemberRole; last_read_seq: number | string; joined_at: number | string; accepted_at: number | string | null; hidden_seq: number | string | null; muted_at: number | string | null };

/** Channels kept in memory at most (a few KB each, more for big channels). */
const MAX_CACHED_CHANNELS = 100_000;
/**
 * And at most this much memory, by an estimate made when a channel is loaded: a 1,000-member
 * channel weighs a thousand small ones (an audit filled memory with 400 of them).
 */
const MAX_CACHED_BYTES = 256 * 1024 * 1024;
const stateBytes = (s: ChannelState) => 1024 + 200 * s.members.size + 2 * (s.lastMessage?.text.length ?? 0) + 8 * s.deletedSeqs.length;
/**
 * Ids that are no channel, remembered for a while so a client that lists unknown ids again and
 * again (a `sync` of 500 random ids) costs no query each time. Ids are random UUIDs, so an id
 * that becomes a channel later was never asked before it existed; a creation clears it anyway.
 */
const MAX_MISSING = 10_000;
const MISSING_TTL_MS = 60_000;

/** What fan-out and the conversation list need of a channel, kept in memory. */
export interface ChannelState {
  id: string;
  kind: ChannelKind;
  name: string | null;
  visibility: ChannelVisibility;
  createdAt: number;
  headSeq: number;
  /** The last rev: every new message and every change of one takes the next (protocol v1.1). */
  headRev: number;
  lastMessage: MessageView | null;
  members: Map<string, MemberState>;
  /**
   * Seqs of deleted messages, ascending: unread counts leave them out (a binary search per
   * member, no query). Kept for the channel's life in memory: deletes are rare.
   */
  deletedSeqs: number[];
  /** Per member, the seqs of unread messages that mention them, ascending (mentionCount). */
  mentions: Map<string, number[]>;
  /** The heads when this state was read from the database (see ChannelSequencer). */
  loadedHeadSeq: number;
  loadedHeadRev: number;
  /** Up to which rev this instance's connections got the channel's changes live; null: none yet since the load. */
  deliveredRev: number | null;
  /** The highest seq this instance's connections got as `message.new` live (set with deliveredRev). */
  deliveredSeq: number | null;
  /** Channel administration (see Channel); absent is null. */
  topic?: string | null;
  createdBy?: string | null;
  archivedAt?: number | null;
}

/**
 * The in-memory view of channels, members and read markers, so that sending a message checks
 * membership and computes every member's unread count without a query per recipient.
 *
 * Loaded lazily from the database, then kept correct by the committed changes the FanoutBus
 * brings, this instance's and every other one's alike (the store is the bus's first listener). A
 * change that lands while a load is in flight bumps the channel's version and the load starts
 * over, so a load never caches a state older than a committed change.
 *
 * It also keeps, for the cached channels, which channels each user is in: presence finds a
 * user's peers there without a query, and who accepted each conversation: presence flows only
 * between members who both accepted a conversation they share, and have not blocked each other.
 */
@Injectable()
export class ChannelStateStore {
  // Bounded: a channel nobody has touched for a while is dropped and read again when needed.
  private readonly states = new LRUCache<string, ChannelState>({
    max: MAX_CACHED_CHANNELS,
    maxSize: MAX_CACHED_BYTES,
    sizeCalculation: stateBytes,
    dispose: (state) => this.unindex(state),
  });
  private readonly loading = new Map<string, Promise<ChannelState | null>>();
  private readonly versions = new LRUCache<string, number>({ max: MAX_CACHED_CHANNELS });
  /** user id → ids of the cached channels they are in. */
  private readonly channelsByUser = new Map<string, Set<string>>();
  private readonly missing = new LRUCache<string, true>({ max: MAX_MISSING, ttl: MISSING_TTL_MS });

  constructor(
    private readonly db: DataSource,
    bus: FanoutBus,
    private readonly blocks: BlocksService,
  ) {
    bus.on('messages.created', ({ messages }) => {
      for (const m of messages) {
        const state = this.touch(m.channelId);
        if (state) this.applyMessage(state, m);
      }
    }, 'state');
    bus.on('messages.updated', ({ messages }) => {
      for (const m of messages) {
        const state = this.touch(m.channelId);
        if (state) this.applyUpdate(state, m);
      }
    }, 'state');
    bus.on('read.moved', ({ channelId, userId, seq }) => {
      const state = this.touch(channelId);
      const member = state?.members.get(userId);
      if (state && member && member.lastReadSeq < seq) {
        member.lastReadSeq = seq;
        dropUpTo(state.mentions, userId, seq);
      }
    }, 'state');
    bus.on('member.joined', ({ channelId, member }) => {
      const state = this.touch(channelId);
      if (!state) return;
      state.members.set(member.userId, { ...member });
      this.index(member.userId, channelId);
    }, 'state');
    bus.on('member.left', ({ channelId, user }) => {
      const state = this.touch(channelId);
      if (!state) return;
      state.members.delete(user.id);
      state.mentions.delete(user.id);
      this.channelsByUser.get(user.id)?.delete(channelId);
    }, 'state');
    bus.on('member.accepted', ({ channelId, userId, acceptedAt }) => {
      const member = this.touch(channelId)?.members.get(userId);
      if (member && member.acceptedAt === null) member.acceptedAt = acceptedAt;
    }, 'state');
    // A new channel: an instance that remembered its id as missing forgets that.
    bus.on('conversation.created', ({ channelId }) => void this.touch(channelId), 'state');
    // Channel administration (ChannelAdminService): renames, topic, visibility, archive, roles, hidden DMs.
    bus.on('channel.updated', ({ channelId, name, topic, visibility, archivedAt }) => {
      const state = this.touch(channelId);
      if (state) Object.assign(state, { name, topic, visibility, archivedAt });
    }, 'state');
    bus.on('member.role', ({ channelId, user, role }) => {
      const member = this.touch(channelId)?.members.get(user.id);
      if (member) member.role = role;
    }, 'state');
    bus.on('member.hidden', ({ channelId, userId, hiddenSeq }) => {
      const member = this.touch(channelId)?.members.get(userId);
      if (member) member.hiddenSeq = hiddenSeq;
    }, 'state');
    bus.on('member.muted', ({ channelId, userId, mutedAt }) => {
      const member = this.touch(channelId)?.members.get(userId);
      if (member) member.mutedAt = mutedAt;
    }, 'state');
  }

  /** The cached state, or undefined: no load. */
  peek(channelId: string): ChannelState | undefined {
    return this.states.get(channelId);
  }

  /** True while the channel is being read (a member here asked for it: a new DM, a join). */
  isLoading(channelId: string): boolean {
    return this.loading.has(channelId);
  }

  cached(): IterableIterator<ChannelState> {
    return this.states.values();
  }

  /**
   * Users who see this one's presence: they share a cached conversation that both accepted (DMs
   * always; channels up to `maxMembers`), and neither blocked the other. A user connected here
   * had all their channels and their blocks loaded at session start, so the cache holds every
   * channel that links them to a connected peer, and the answer is exact for those peers.
   */
  peersOf(userId: string, maxMembers: number): Set<string> {
    const peers = new Set<string>();
    for (const channelId of this.channelsByUser.get(userId) ?? []) {
      const s = this.states.peek(channelId);
      if (!s || !carriesPresence(s, maxMembers) || !accepted(s, userId)) continue;
      for (const m of s.members.values()) {
        if (m.userId === userId || m.acceptedAt === null || peers.has(m.userId)) continue;
        if (this.blocks.between(userId, m.userId) === false) peers.add(m.userId);
      }
    }
    return peers;
  }

  /**
   * Whether `a` and `b` see each other's presence (the rule of `peersOf`, for one pair). `via`, a
   * conversation they share, is looked at first: for a DM's own view that usually settles it.
   */
  sharesPresence(a: string, b: string, maxMembers: number, via?: ChannelState): boolean {
    return this.blocks.between(a, b) === false && this.shareAccepted(a, b, maxMembers, via);
  }

  /** Whether `a` and `b` share a cached conversation that carries presence and both accepted (blocks aside). */
  shareAccepted(a: string, b: string, maxMembers: number, via?: ChannelState): boolean {
    if (via && carriesPresence(via, maxMembers) && accepted(via, a) && accepted(via, b)) return true;
    const ofA = this.channelsByUser.get(a);
    const ofB = this.channelsByUser.get(b);
    if (!ofA || !ofB) return false;
    for (const channelId of ofA.size <= ofB.size ? ofA : ofB) {
      const s = this.states.peek(channelId);
      if (s && carriesPresence(s, maxMembers) && accepted(s, a) && accepted(s, b)) return true;
    }
    return false;
  }

  get(channelId: string): Promise<ChannelState | null> {
    const cached = this.states.get(channelId);
    if (cached) return Promise.resolve(cached);
    if (this.missing.has(channelId)) return Promise.resolve(null);
    let pending = this.loading.get(channelId);
    if (!pending) {
      pending = this.load(channelId).finally(() => this.loading.delete(channelId));
      this.loading.set(channelId, pending);
    }
    return pending;
  }

  async getMany(channelIds: string[]): Promise<ChannelState[]> {
    const states = await Promise.all(channelIds.map((id) => this.get(id)));
    return states.filter((s): s is ChannelState => s !== null);
  }

  /**
   * Finds out, with one query per 500 ids, which of these ids that are neither cached nor known
   * to be missing are no channel, and remembers them: the `get`s that follow cost no query each.
   */
  async learnMissing(channelIds: string[]): Promise<void> {
    const unknown = channelIds.filter((id) => !this.states.has(id) && !this.missing.has(id));
    if (unknown.length === 0) return;
    const versions = unknown.map((id) => this.versions.get(id) ?? 0);
    const heads = await this.heads(unknown);
    unknown.forEach((id, i) => {
      // A change of that id meanwhile means it exists now.
      if (!heads.has(id) && (this.versions.get(id) ?? 0) === versions[i]) this.missing.set(id, true);
    });
  }

  /** Ids of the channels a user belongs to (from the database: the user may have none cached). */
  async channelIdsOf(userId: string): Promise<string[]> {
    const rows: { channel_id: string }[] = await this.db
      .createQueryBuilder()
      .select('ms.channel_id', 'channel_id')
      .from('memberships', 'ms')
      .where('ms.user_id = :userId', { userId })
      .getRawMany();
    return rows.map((r) => r.channel_id);
  }

  // ---- changes, applied after they commit -------------------------------------------------

  /** Call for every committed change of a channel, cached or not. */
  touch(channelId: string): ChannelState | undefined {
    this.versions.set(channelId, (this.versions.get(channelId) ?? 0) + 1);
    this.missing.delete(channelId);
    return this.states.get(channelId);
  }

  applyMessage(state: ChannelState, message: MessageView): void {
    this.touch(state.id);
    if (message.rev > state.headRev) state.headRev = message.rev;
    if (message.seq > state.headSeq) {
      state.headSeq = message.seq;
      state.lastMessage = message;
      // A message's mentions count for the members it names who have not read it yet.
      for (const u of message.mentions) {
        const member = state.members.get(u.id);
        if (member && u.id !== message.sender?.id && member.lastReadSeq < message.seq) insertSorted(state.mentions, u.id, message.seq);
      }
    }
    const sender = message.sender ? state.members.get(message.sender.id) : undefined;
    if (sender && sender.lastReadSeq < message.seq) {
      sender.lastReadSeq = message.seq;
      dropUpTo(state.mentions, sender.userId, message.seq);
    }
  }

  /**
   * A stored message changed (edit, delete, reaction): the preview when it is the last message,
   * the deleted seqs that unread counts skip, and whose unread mentions it is. Applying the same
   * change twice, or an older one after a newer, changes nothing (the rev decides).
   */
  applyUpdate(state: ChannelState, message: MessageView): void {
    this.touch(state.id);
    if (message.rev > state.headRev) state.headRev = message.rev;
    if (message.seq > state.headSeq) return this.applyMessage(state, message); // its creation was missed: same thing
    if (state.lastMessage?.seq === message.seq && state.lastMessage.rev < message.rev) state.lastMessage = message;
    if (message.deleted) {
      const i = lowerBound(state.deletedSeqs, message.seq);
      if (state.deletedSeqs[i] !== message.seq) state.deletedSeqs.splice(i, 0, message.seq);
    }
    for (const [userId, seqs] of state.mentions) {
      const i = lowerBound(seqs, message.seq);
      if (seqs[i] === message.seq) seqs.splice(i, 1);
      if (seqs.length === 0) state.mentions.delete(userId);
    }
    if (message.deleted) return;
    for (const u of message.mentions) {
      const member = state.members.get(u.id);
      if (member && u.id !== message.sender?.id && member.lastReadSeq < message.seq) insertSorted(state.mentions, u.id, message.seq);
    }
  }

  /**
   * Reads a cached channel again and updates it in place (the objects that fan-out holds stay
   * valid): after the bus was cut, members and markers may have missed changes. The head only
   * moves forward; messages it skips are the sequencer's to refill. Gone channels are dropped.
   */
  async refresh(channelId: string): Promise<ChannelState | undefined> {
    const cached = this.states.get(channelId);
    if (!cached) return undefined;
    let fresh: ChannelState | null = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const version = this.touch(channelId) && this.versions.get(channelId);
      fresh = await this.read(channelId);
      if (this.versions.get(channelId) === version) break; // else a change landed meanwhile: read again
    }
    if (!fresh) {
      this.states.delete(channelId);
      return undefined;
    }
    this.unindex(cached);
    cached.name = fresh.name;
    cached.visibility = fresh.visibility;
    cached.topic = fresh.topic;
    cached.archivedAt = fresh.archivedAt;
    cached.members = fresh.members;
    cached.deletedSeqs = fresh.deletedSeqs;
    cached.mentions = fresh.mentions;
    if (fresh.headSeq > cached.headSeq) {
      cached.headSeq = fresh.headSeq;
      cached.lastMessage = fresh.lastMessage;
    }
    if (fresh.headRev > cached.headRev) {
      cached.headRev = fresh.headRev;
      if (fresh.lastMessage && cached.lastMessage?.seq === fresh.lastMessage.seq) cached.lastMessage = fresh.lastMessage;
    }
    for (const userId of cached.members.keys()) this.index(userId, channelId);
    return cached;
  }

  /**
   * Reads one membership the cached state does not show. A join on another instance reaches this
   * one's memory a bus round trip after its commit, and a client may be quicker: the database has
   * the last word before anyone is refused. Found, it is added to the cached state.
   */
  async recheckMember(state: ChannelState, userId: string): Promise<boolean> {
    const row = await this.db
      .createQueryBuilder()
      .select(['ms.user_id AS user_id', 'u.username AS username', 'ms.role AS role'])
      .addSelect(['ms.last_read_seq AS last_read_seq', 'ms.joined_at AS joined_at', 'ms.accepted_at AS accepted_at', 'ms.hidden_seq AS hidden_seq', 'ms.muted_at AS muted_at'])
      .from('memberships', 'ms')
      .innerJoin('users', 'u', 'u.id = ms.user_id')
      .where('ms.channel_id = :channelId AND ms.user_id = :userId', { channelId: state.id, userId })
      .getRawOne<MemberRow>();
    if (!row) return false;
    if (!state.members.has(userId) && this.states.peek(state.id) === state) {
      state.members.set(userId, {
        userId,
        username: row.username,
        role: row.role,
        lastReadSeq: Number(row.last_read_seq),
        joinedAt: Number(row.joined_at),
        acceptedAt: row.accepted_at === null ? null : Number(row.accepted_at),
        hiddenSeq: row.hidden_seq === null ? null : Number(row.hidden_seq),
        mutedAt: row.muted_at === null ? null : Number(row.muted_at),
      });
      this.index(userId, state.id);
    }
    return true;
  }

  /** The database's heads of these channels (channels that do not exist are left out). */
  async heads(channelIds: string[]): Promise<Map<string, { headSeq: number; headRev: number }>> {
    const heads = new Map<string, { headSeq: number; headRev: number }>();
    for (let i = 0; i < channelIds.length; i += 500) {
      const rows = await this.db
        .createQueryBuilder()
        .select(['c.id AS id', 'c.head_seq AS head_seq', 'c.head_rev AS head_rev'])
        .from('channels', 'c')
        .where('c.id IN (:...ids)', { ids: channelIds.slice(i, i + 500) })
        .getRawMany<{ id: string; head_seq: string | number; head_rev: string | number }>();
      for (const r of rows) heads.set(r.id, { headSeq: Number(r.head_seq), headRev: Number(r.head_rev) });
    }
    return heads;
  }

  private index(userId: string, channelId: string): void {
    let set = this.channelsByUser.get(userId);
    if (!set) this.channelsByUser.set(userId, (set = new Set()));
    set.add(channelId);
  }

  private unindex(state: ChannelState): void {
    for (const userId of state.members.keys()) {
      const set = this.channelsByUser.get(userId);
      if (!set) continue;
      set.delete(state.id);
      if (set.size === 0) this.channelsByUser.delete(userId);
    }
  }

  // ---- loading ------------------------------------------------------------------------------

  private async load(channelId: string): Promise<ChannelState | null> {
    for (let attempt = 0; ; attempt++) {
      const version = this.versions.get(channelId) ?? 0;
      const state = await this.read(channelId);
      if ((this.versions.get(channelId) ?? 0) === version) {
        if (state) {
          this.states.set(channelId, state);
          for (const userId of state.members.keys()) this.index(userId, channelId);
        } else {
          this.missing.set(channelId, true);
        }
        return state;
      }
      // Overtaken by changes again and again: answer this once, but never cache what may be
      // stale (a member who left would stay a member here).
      if (attempt >= 5) return state;
    }
  }

  private async read(channelId: string): Promise<ChannelState | null> {
    const ch = await this.db
      .createQueryBuilder()
      .select(['c.id AS id', 'c.kind AS kind', 'c.name AS name', 'c.visibility AS visibility'])
      .addSelect(['c.created_at AS created_at', 'c.head_seq AS head_seq', 'c.head_rev AS head_rev', 'c.topic AS topic', 'c.created_by AS created_by', 'c.archived_at AS archived_at'])
      .from('channels', 'c')
      .where('c.id = :channelId', { channelId })
      .getRawOne<{
        id: string; kind: ChannelKind; name: string | null; visibility: ChannelVisibility; created_at: string | number; head_seq: string | number; head_rev: string | number;
        topic: string | null; created_by: string | null; archived_at: string | number | null;
      }>();
    if (!ch) return null;
    const [members, last, deleted, mentions] = await Promise.all([
      this.db
        .createQueryBuilder()
        .select(['ms.user_id AS user_id', 'u.username AS username', 'ms.role AS role'])
        .addSelect(['ms.last_read_seq AS last_read_seq', 'ms.joined_at AS joined_at', 'ms.accepted_at AS accepted_at', 'ms.hidden_seq AS hidden_seq', 'ms.muted_at AS muted_at'])
        .from('memberships', 'ms')
        .innerJoin('users', 'u', 'u.id = ms.user_id')
        .where('ms.channel_id = :channelId', { channelId })
        .getRawMany<MemberRow>(),
      this.db
        .createQueryBuilder()
        .select(MESSAGE_COLUMNS)
        .from('messages', 'm')
        .innerJoin('users', 'u', 'u.id = m.sender_id')
        .where('m.channel_id = :channelId AND m.seq = :seq', { channelId, seq: Number(ch.head_seq) })
        .getRawOne<MessageRow>(),
      this.db
        .createQueryBuilder()
        .select('m.seq', 'seq')
        .from('messages', 'm')
        .where('m.channel_id = :channelId AND m.deleted_at IS NOT NULL', { channelId })
        .orderBy('m.seq', 'ASC')
        .getRawMany<{ seq: number | string }>(),
      // Each member's unread mentions: a range of the (channel, user, seq) key per member.
      this.db
        .createQueryBuilder()
        .select(['mm.user_id AS user_id', 'mm.seq AS seq'])
        .from('message_mentions', 'mm')
        .innerJoin('memberships', 'ms', 'ms.channel_id = mm.channel_id AND ms.user_id = mm.user_id')
        .where('mm.channel_id = :channelId AND mm.seq > ms.last_read_seq', { channelId })
        .orderBy('mm.seq', 'ASC')
        .getRawMany<{ user_id: string; seq: number | string }>(),
    ]);
    const mentionSeqs = new Map<string, number[]>();
    for (const r of mentions) insertSorted(mentionSeqs, r.user_id, Number(r.seq));
    return {
      id: ch.id,
      kind: ch.kind,
      name: ch.name,
      visibility: ch.visibility,
      createdAt: Number(ch.created_at),
      headSeq: Number(ch.head_seq),
      headRev: Number(ch.head_rev),
      lastMessage: last ? rowToMessage(last) : null,
      deletedSeqs: deleted.map((r) => Number(r.seq)),
      mentions: mentionSeqs,
      members: new Map(
        members.map((m) => [
          m.user_id,
          {
            userId: m.user_id,
            username: m.username,
            role: m.role,
            lastReadSeq: Number(m.last_read_seq),
            joinedAt: Number(m.joined_at),
            acceptedAt: m.accepted_at === null ? null : Number(m.accepted_at),
            hiddenSeq: m.hidden_seq === null ? null : Number(m.hidden_seq),
            mutedAt: m.muted_at === null ? null : Number(m.muted_at),
          },
        ]),
      ),
      loadedHeadSeq: Number(ch.head_seq),
      loadedHeadRev: Number(ch.head_rev),
      deliveredRev: null,
      deliveredSeq: null,
      topic: ch.topic,
      createdBy: ch.created_by,
      archivedAt: ch.archived_at === null ? null : Number(ch.archived_at),
    };
  }
}

/** DMs always carry their members' presence; channels up to `maxMembers` (PRESENCE_MAX_CHANNEL_MEMBERS). */
const carriesPresence = (s: ChannelState, maxMembers: number): boolean => s.kind === 'dm' || s.members.size <= maxMembers;

/** Whether this user is a member who accepted the conversation. */
const accepted = (s: ChannelState, userId: string): boolean => (s.members.get(userId)?.acceptedAt ?? null) !== null;

/** The first index whose value is >= x in an ascending array. */
export function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Adds seq to a user's ascending list (no repeat); usually at the end. */
function insertSorted(lists: Map<string, number[]>, userId: string, seq: number): void {
  let list = lists.get(userId);
  if (!list) lists.set(userId, (list = []));
  if (list.length === 0 || list[list.length - 1] < seq) list.push(seq);
  else {
    const i = lowerBound(list, seq);
    if (list[i] !== seq) list.splice(i, 0, seq);
  }
}

/** Drops the seqs up to `seq` from a user's list (they are read). */
function dropUpTo(lists: Map<string, number[]>, userId: string, seq: number): void {
  const list = lists.get(userId);
  if (!list) return;
  const keep = list.slice(lowerBound(list, seq + 1));
  if (keep.length > 0) lists.set(userId, keep);
  else lists.delete(userId);
}

/** Whether a channel is archived (read-only); the state carries `archivedAt` or null, or nothing when it never was. */
export const isArchived = (state: ChannelState): boolean => (state.archivedAt ?? null) !== null;

/** Messages above `lastReadSeq` that count as unread: all of them but the deleted ones. */
export function unreadCount(state: ChannelState, lastReadSeq: number): number {
  if (lastReadSeq >= state.headSeq) return 0;
  const deletedAbove = state.deletedSeqs.length - lowerBound(state.deletedSeqs, lastReadSeq + 1);
  return Math.max(0, state.headSeq - lastReadSeq - deletedAbove);
}

/** Unread messages that mention this member (the list holds only unread, undeleted ones). */
export function mentionCount(state: ChannelState, userId: string, lastReadSeq: number): number {
  const list = state.mentions.get(userId);
  return list ? list.length - lowerBound(list, lastReadSeq + 1) : 0;
}
