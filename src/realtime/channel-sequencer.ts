import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ChannelState, ChannelStateStore } from '../channels/channel-state.store.js';
import { AppConfig } from '../config/app-config.js';
import { FanoutBus } from '../fanout/fanout-bus.js';
import { MessageView, rowToMessage } from '../messages/message.mapper.js';
import { MessageStore } from '../messages/message-store.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { CLOSE } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';

/** Messages that came early, waiting for their predecessors (a channel with a gap). */
interface Gap {
  held: Map<number, MessageView>;
  timer: NodeJS.Timeout | null;
  refilling: boolean;
}

type RefillReason = 'gap' | 'head_check' | 'resync';

/** Messages per database read of a refill. */
const REFILL_PAGE = 200;

/**
 * Puts each channel's messages out to this instance's connections in seq order, with no gap and
 * no repeat, whatever order they arrive in: this instance's commits and other instances' (through
 * the bus) interleave, pub/sub may reorder two instances' publishes, and it may lose some.
 *
 * `ChannelState.deliveredSeq` is how far live delivery has gone here. A message right after it
 * goes out at once; a repeat is dropped; one further ahead waits BUS_GAP_WAIT_MS for its
 * predecessors, then they are read from the database (a refill), and everything goes out in
 * order. If the database cannot be read, the channel's connections here are closed with 1012 so
 * that their clients resume by seq: a client never silently misses a message.
 *
 * A message lost at the end of a burst leaves no later gap to notice, so with several instances
 * the heads of the cached channels are also compared with the database every BUS_HEAD_CHECK_MS,
 * and after the bus reconnects the cached channels are read again (members and markers too).
 *
 * A freshly loaded channel has delivered nothing yet: its first batch goes out from its own
 * first seq when that is at or below the head the load saw (those messages were committed before
 * the load, but their announcement came after it: nobody here has had them live).
 */
@Injectable()
export class ChannelSequencer implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Sequencer');
  private readonly gaps = new Map<string, Gap>();
  private headCheck: NodeJS.Timeout | null = null;
  private checking = false;
  /** Renders messages (in order, none delivered before) for this instance's connections. */
  deliver: (state: ChannelState, messages: MessageView[]) => void = () => undefined;

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
    this.bus.onResync = () => void this.resync();
    this.headCheck = setInterval(() => void this.checkHeads('head_check'), this.config.busHeadCheckMs);
    this.headCheck.unref();
  }

  onModuleDestroy(): void {
    if (this.headCheck) clearInterval(this.headCheck);
    for (const gap of this.gaps.values()) if (gap.timer) clearTimeout(gap.timer);
    this.gaps.clear();
  }

  /** Messages of one channel, ascending by seq. */
  push(state: ChannelState, messages: MessageView[]): void {
    if (messages.length === 0) return;
    state.deliveredSeq ??= Math.min(state.loadedHeadSeq, messages[0].seq - 1);
    const delivered = state.deliveredSeq;
    const gap = this.gaps.get(state.id);
    // The common case: the next seqs, in a row, and no gap pending.
    if (!gap && messages[0].seq === delivered + 1 && messages[messages.length - 1].seq === delivered + messages.length) {
      state.deliveredSeq = delivered + messages.length;
      this.deliver(state, messages);
      return;
    }
    const g = gap ?? this.openGap(state.id);
    for (const m of messages) if (m.seq > delivered) g.held.set(m.seq, m);
    this.drain(state, g);
  }

  private openGap(channelId: string): Gap {
    const gap: Gap = { held: new Map(), timer: null, refilling: false };
    this.gaps.set(channelId, gap);
    return gap;
  }

  /** Sends whatever now follows on without a hole; a hole left waits, then is refilled. */
  private drain(state: ChannelState, gap: Gap): void {
    if (gap.refilling) return;
    const ready: MessageView[] = [];
    let next = (state.deliveredSeq ?? 0) + 1;
    for (let m = gap.held.get(next); m; m = gap.held.get(next)) {
      ready.push(m);
      gap.held.delete(next++);
    }
    for (const seq of gap.held.keys()) if (seq < next) gap.held.delete(seq);
    if (ready.length > 0) {
      state.deliveredSeq = next - 1;
      this.deliver(state, ready);
    }
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
   * Reads the messages after deliveredSeq from the database, up to `upTo` (or up to the first
   * held one), and delivers them with the held ones, in order.
   */
  private async refill(state: ChannelState, reason: RefillReason, upTo?: number): Promise<void> {
    const gap = this.gaps.get(state.id) ?? this.openGap(state.id);
    if (gap.refilling) return;
    gap.refilling = true;
    if (gap.timer) clearTimeout(gap.timer);
    gap.timer = null;
    this.metrics.busRefills.inc({ reason });
    let delivered = (state.deliveredSeq ??= state.loadedHeadSeq);
    const target = upTo ?? Math.min(...gap.held.keys()) - 1;
    try {
      for (let after = delivered; after < target; ) {
        const rows = await this.messages.page(state.id, { after, limit: REFILL_PAGE });
        for (const row of rows.slice(0, REFILL_PAGE)) {
          const m = rowToMessage(row);
          this.store.applyMessage(state, m);
          if (m.seq > delivered && !gap.held.has(m.seq)) {
            gap.held.set(m.seq, m);
            this.metrics.busRefilledMessages.inc();
          }
          after = m.seq;
        }
        if (rows.length <= REFILL_PAGE) break;
      }
    } catch (err) {
      this.logger.warn(`refill of ${state.id} failed (${(err as Error).message}): its connections here resume instead`);
      this.closeMembers(state);
      state.deliveredSeq = Math.max(state.headSeq, ...gap.held.keys());
      gap.held.clear();
    } finally {
      gap.refilling = false;
    }
    delivered = state.deliveredSeq;
    if (gap.held.size > 0 && !gap.held.has(delivered + 1)) {
      // The database has no predecessor (it always should: seq order is commit order). Go on
      // from the first held message rather than wait forever.
      this.logger.warn(`channel ${state.id}: seqs after ${delivered} are not in the database; skipping ahead`);
      state.deliveredSeq = Math.min(...gap.held.keys()) - 1;
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
        const delivered = state.deliveredSeq ?? state.loadedHeadSeq;
        if (head !== undefined && head > delivered) await this.refill(state, reason, head);
      }
    } catch (err) {
      this.logger.warn(`head check failed: ${(err as Error).message}`);
    } finally {
      this.checking = false;
    }
  }

  /** After the bus was cut: members and markers read again, then every missed message refilled. */
  private async resync(): Promise<void> {
    const ids = [...this.store.cached()].map((s) => s.id);
    for (let i = 0; i < ids.length; i += 16) {
      await Promise.all(ids.slice(i, i + 16).map((id) => this.store.refresh(id).catch(() => undefined)));
    }
    await this.checkHeads('resync');
  }
}
