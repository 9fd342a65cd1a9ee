import type { ChannelState, ChannelStateStore } from '../channels/channel-state.store.js';
import type { AppConfig } from '../config/app-config.js';
import type { FanoutBus } from '../fanout/fanout-bus.js';
import type { MessageRow, MessageView } from '../messages/message.mapper.js';
import type { MessageStore } from '../messages/message-store.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ChannelSequencer } from './channel-sequencer.js';
import type { ConnectionRegistry } from './connection-registry.js';

/**
 * The ordering rules on their own: arrivals in any order, repeats, losses. The committed log
 * stands in for the messages table (the e2e cluster suite runs the same code on PostgreSQL).
 */
describe('ChannelSequencer', () => {
  const GAP_WAIT = 30;
  let committed: MessageView[];
  let delivered: number[];
  let failReads: boolean;
  let closed: number[];
  let sequencer: ChannelSequencer;
  let state: ChannelState;

  const msg = (seq: number): MessageView => ({
    id: `m${seq}`, channelId: 'c1', seq, kind: 'user', sender: { id: 'u1', username: 'u1' }, text: `t${seq}`, clientMsgId: `k${seq}`, createdAt: new Date(0).toISOString(),
  });
  const commit = (...seqs: number[]) => seqs.map((s) => {
    const m = msg(s);
    committed.push(m);
    return m;
  });
  const toRow = (m: MessageView): MessageRow => ({
    id: m.id, channel_id: m.channelId, seq: m.seq, sender_id: m.sender!.id, sender_username: m.sender!.username, text: m.text, client_msg_id: m.clientMsgId, created_at: 0,
  });
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeEach(() => {
    committed = [];
    delivered = [];
    failReads = false;
    closed = [];
    const messages = {
      page: async (_channelId: string, q: { after: number; limit: number }) => {
        if (failReads) throw new Error('database unreachable');
        return committed.filter((m) => m.seq > q.after).sort((a, b) => a.seq - b.seq).slice(0, q.limit + 1).map(toRow);
      },
    } as unknown as MessageStore;
    const store = {
      applyMessage: (s: ChannelState, m: MessageView) => {
        if (m.seq > s.headSeq) s.headSeq = m.seq;
      },
      cached: () => [state][Symbol.iterator](),
      heads: async () => new Map([['c1', Math.max(0, ...committed.map((m) => m.seq))]]),
    } as unknown as ChannelStateStore;
    const registry = { of: () => new Set([{ close: (code: number) => closed.push(code) }]) } as unknown as ConnectionRegistry;
    const config = { busGapWaitMs: GAP_WAIT, busHeadCheckMs: 60_000 } as AppConfig;
    sequencer = new ChannelSequencer(store, messages, { clustered: false } as FanoutBus, registry, config, new MetricsService());
    sequencer.deliver = (_s, ms) => delivered.push(...ms.map((m) => m.seq));
    state = { id: 'c1', kind: 'channel', name: 'c', visibility: 'public', createdAt: 0, headSeq: 0, lastMessage: null, members: new Map([['u1', {} as never]]), loadedHeadSeq: 0, deliveredSeq: null };
  });
  afterEach(() => sequencer.onModuleDestroy());

  it('delivers messages that arrive in order at once', () => {
    sequencer.push(state, commit(1, 2));
    sequencer.push(state, commit(3));
    expect(delivered).toEqual([1, 2, 3]);
  });

  it('drops repeats', () => {
    const first = commit(1, 2);
    sequencer.push(state, first);
    sequencer.push(state, first);
    sequencer.push(state, [first[1]]);
    expect(delivered).toEqual([1, 2]);
  });

  it('holds an early arrival until its predecessor comes, then delivers both in order', async () => {
    const [m1, m2] = commit(1, 2);
    sequencer.push(state, [m2]);
    expect(delivered).toEqual([]);
    await wait(GAP_WAIT / 3);
    sequencer.push(state, [m1]);
    expect(delivered).toEqual([1, 2]);
  });

  it('refills a predecessor that never comes from the database, in order, before what follows', async () => {
    const [, , m3] = commit(1, 2, 3);
    sequencer.push(state, [m3]);
    await wait(GAP_WAIT * 3);
    expect(delivered).toEqual([1, 2, 3]);
    sequencer.push(state, commit(4));
    expect(delivered).toEqual([1, 2, 3, 4]);
  });

  it('finds a message lost at the end of a burst by comparing heads with the database', async () => {
    sequencer.push(state, commit(1));
    commit(2); // committed elsewhere, its announcement lost
    await sequencer.checkHeads('head_check');
    expect(delivered).toEqual([1, 2]);
  });

  it('starts a freshly loaded channel from the first message announced after the load, even one the load already saw', () => {
    commit(1, 2);
    state.loadedHeadSeq = 2; // loaded after 2 was committed, before its announcement arrived
    sequencer.push(state, [committed[1]]);
    expect(delivered).toEqual([2]);
  });

  it('closes the channel\'s connections with 1012 when the database cannot refill a gap', async () => {
    const [, m2] = commit(1, 2);
    failReads = true;
    sequencer.push(state, [m2]);
    await wait(GAP_WAIT * 3);
    expect(closed).toEqual([1012]);
    sequencer.push(state, commit(3));
    expect(delivered).toEqual([3]); // the clients resume by seq; live delivery goes on
  });
});
