import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ChannelState, ChannelStateStore } from '../channels/channel-state.store.js';
import { AppConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MessageView, rowToMessage } from '../messages/message.mapper.js';
import { MessageStore } from '../messages/message-store.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { CLOSE } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';

/** A channel's next change to put out: a new message, or the new state of a stored one. */
export interface Delivery {
  message: MessageView;
  isNew: boolean;
}

/** Changes that came early, waiting for their predecessors (a channel with a gap), by rev. */
interface Gap {
  held: Map<number, Delivery>;
  timer: NodeJS.Timeout | null;
  refilling: boolean;
}

type RefillReason = 'gap' | 'head_check' | 'resync';

/** Messages per database read of a refill. */
const REFILL_PAGE = 200;

/**
 * Puts each channel's changes (new messages, and since v1.1 edits, deletes and reactions) out to
 * this instance's connections in rev order, with no gap and no repeat, whatever order they
 * arrive in: this instance's commits and other instances' (through the bus) interleave, pub/sub
 * may reorder two instances' publishes, and it may lose some. Every new message and every change
 * takes the channel's next rev in its commit, so revs have no gaps either.
 *
 * `ChannelState.deliveredRev` is how far live delivery has gone here. A change right after it
 * goes out at once; a repeat is dropped; one further ahead waits BUS_GAP_WAIT_MS for its
 * predecessors, then they are read from the database (a refill), and everything goes out in
 * order. A refill reads the current state of every message changed after deliveredRev: one row
 * per message, however often it changed, and never older than a change held here (revs follow
 * commit order, so whatever was held had committed before the read). New messages among them go
 * out as message.new in seq order, the rest as message.updated. If the database cannot be read,
 * the channel's connections here are closed with 1012 so that their clients resume: a client
 * never silently misses a change.
 *
 * A change lost at the end of a burst leaves no later gap to notice, so with several instances
 * the heads of the cached channels are also compared with the database every BUS_HEAD_CHECK_MS,
 * and after the bus reconnects the cached channels are read again (members and markers too).
 *
 * A freshly loaded channel has delivered nothing yet: its first batch goes out from its own
 * first rev when that is at or below the head the load saw (those changes were committed before
 * the load, but their announcement came after it: nobody here has had them live).
 */
@Injectable()
export class ChannelSequencer implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Sequencer');
  private readonly gaps = new Map<string, Gap>();
  private headCheck: NodeJS.Timeout | null = null;
  private checking = false;
  /** Renders changes (in order, none delivered before) for this instance's connections. */
  deliver: (state: ChannelState, items: Delivery[]) => void = () => undefined;

  constructor(
    private readonly store: ChannelStateStore,
    private readonly messages: MessageStore,
    private readonly bus: FanoutBus,
    private readonly registry: ConnectionRegistry,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    if (!this.bus.clustered) return; // one instance: its own commits come in order, nothing is lost
    this.bus.onResync(() => void this.resync());
    this.headCheck = setInterval(() => void this.checkHeads('head_check'), this.config.busHeadCheckMs);
    this.headCheck.unref();
  }

  onModuleDestroy(): void {
    if (this.headCheck) clearInterval(this.headCheck);
    for (const gap of this.gaps.values()) if (gap.timer) clearTimeout(gap.timer);
    this.gaps.clear();
  }

  /** Changes of one channel, ascending by rev. */
  push(state: ChannelState, items: Delivery[]): void {
    if (items.length === 0) return;
    this.start(state, items[0].message.rev);
    const delivered = state.deliveredRev!;
    const gap = this.gaps.get(state.id);
    // The common case: the next revs, in a row, and no gap pending.
    if (!gap && items[0].message.rev === delivered + 1 && items[items.length - 1].message.rev === delivered + items.length) {
      this.out(state, items);
      return;
    }
    const g = gap ?? this.openGap(state.id);
    for (const item of items) if (item.message.rev > delivered) g.held.set(item.message.rev, item);
    this.drain(state, g);
  }

  /** Where live delivery starts on a channel that has delivered nothing since its load. */
  private start(state: ChannelState, firstRev: number): void {
    if (state.deliveredRev !== null) return;
    state.deliveredRev = Math.min(state.loadedHeadRev, firstRev - 1);
    state.deliveredSeq = state.loadedHeadSeq;
  }

  /** Delivers changes that follow deliveredRev on, and moves the marks. */
  private out(state: ChannelState, items: Delivery[]): void {
    for (const item of items) {
      if (item.message.rev > state.deliveredRev!) state.deliveredRev = item.message.rev;
      if (item.isNew && item.message.seq > (state.deliveredSeq ?? 0)) state.deliveredSeq = item.message.seq;
    }
    this.deliver(state, items);
  }

  private openGap(channelId: string): Gap {
    const gap: Gap = { held: new Map(), timer: null, refilling: false };
    this.gaps.set(channelId, gap);
    return gap;
  }

  /** Sends whatever now follows on without a hole; a hole left waits, then is refilled. */
  private drain(state: ChannelState, gap: Gap): void {
    if (gap.refilling) return;
    const ready: Delivery[] = [];
    let next = (state.deliveredRev ?? 0) + 1;
    for (let item = gap.held.get(next); item; item = gap.held.get(next)) {
      ready.push(item);
      gap.held.delete(next++);
    }
    for (const rev of gap.held.keys()) if (rev < next) gap.held.delete(rev);
    if (ready.length > 0) this.out(state, ready);
    if (gap.held.size === 0) {
      if (gap.timer) clearTimeout(gap.timer);
      this.gaps.delete(state.id);
    } else if (!gap.timer) {
      gap.timer = setTimeout(() => {
        gap.timer = null;
        void this.refill(state, 'gap');
      }, this.config.busGapWaitMs);
    }
  }

  /**
   * Reads the current state of every message changed after deliveredRev from the database and
   * delivers it (new messages by seq, then the changed ones by rev); held changes it covers are
   * dropped, later ones still wait their turn.
   */
  private async refill(state: ChannelState, reason: RefillReason, upTo?: number): Promise<void> {
    const gap = this.gaps.get(state.id) ?? this.openGap(state.id);
    if (gap.refilling) return;
    gap.refilling = true;
    if (gap.timer) clearTimeout(gap.timer);
    gap.timer = null;
    this.metrics.busRefills.inc({ reason });
    this.start(state, state.loadedHeadRev + 1);
    const from = state.deliveredRev!;
    const rows: MessageView[] = [];
    try {
      for (let after = from; ; ) {
        const page = await this.messages.changes(state.id, { afterRev: after, limit: REFILL_PAGE });
        for (const row of page.slice(0, REFILL_PAGE)) rows.push(rowToMessage(row));
        if (page.length <= REFILL_PAGE) break;
        after = rows[rows.length - 1].rev;
      }
    } catch (err) {
      this.logger.warn(`refill of ${state.id} failed (${(err as Error).message}): its connections here resume instead`);
      this.closeMembers(state);
      state.deliveredRev = Math.max(state.headRev, upTo ?? 0, ...gap.held.keys());
      state.deliveredSeq = Math.max(state.deliveredSeq ?? 0, state.headSeq);
      gap.held.clear();
      gap.refilling = false;
      this.drain(state, gap);
      return;
    }
    gap.refilling = false;
    const readUpTo = Math.max(upTo ?? 0, rows.length > 0 ? rows[rows.length - 1].rev : from);
    const seqMark = state.deliveredSeq ?? 0;
    const fresh = rows.filter((m) => m.seq > seqMark).sort((a, b) => a.seq - b.seq);
    const changed = rows.filter((m) => m.seq <= seqMark);
    for (const m of fresh) this.store.applyMessage(state, m);
    for (const m of changed) this.store.applyUpdate(state, m);
    const items: Delivery[] = [...fresh.map((message) => ({ message, isNew: true })), ...changed.map((message) => ({ message, isNew: false }))];
    this.metrics.busRefilledMessages.inc(items.length);
    // Held changes at or below what was read are in the rows already (or older than them).
    for (const rev of gap.held.keys()) if (rev <= readUpTo) gap.held.delete(rev);
    if (items.length > 0) this.out(state, items);
    if (readUpTo > state.deliveredRev!) state.deliveredRev = readUpTo;
    if (gap.held.size > 0 && !gap.held.has(state.deliveredRev! + 1)) {
      // The database has no predecessor (it always should: rev order is commit order). Go on
      // from the first held change rather than wait forever.
      this.logger.warn(`channel ${state.id}: revs after ${state.deliveredRev} are not in the database; skipping ahead`);
      state.deliveredRev = Math.min(...gap.held.keys()) - 1;
    }
    this.drain(state, gap);
  }

  private closeMembers(state: ChannelState): void {
    for (const userId of state.members.keys()) {
      for (const conn of this.registry.of(userId) ?? []) conn.close(CLOSE.SERVICE_RESTART, 'missed messages: resume');
    }
  }

  /** Refills every cached channel whose database head is past what was delivered here. */
  async checkHeads(reason: RefillReason): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const states = [...this.store.cached()];
      const heads = await this.store.heads(states.map((s) => s.id));
      for (const state of states) {
        const head = heads.get(state.id);
        const delivered = state.deliveredRev ?? state.loadedHeadRev;
        if (head !== undefined && head.headRev > delivered) await this.refill(state, reason, head.headRev);
      }
    } catch (err) {
      this.logger.warn(`head check failed: ${(err as Error).message}`);
    } finally {
      this.checking = false;
    }
  }

  /** After the bus was cut: members and markers read again, then every missed change refilled. */
  private async resync(): Promise<void> {
    const ids = [...this.store.cached()].map((s) => s.id);
    for (let i = 0; i < ids.length; i += 16) {
      await Promise.all(ids.slice(i, i + 16).map((id) => this.store.refresh(id).catch(() => undefined)));
    }
    await this.checkHeads('resync');
  }
}
