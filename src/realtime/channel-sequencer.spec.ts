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
  let delivered: (number | string)[];
  let rev: number;
  let failReads: boolean;
  let closed: number[];
  let sequencer: ChannelSequencer;
  let state: ChannelState;

  const msg = (seq: number): MessageView => ({
    id: `m${seq}`, channelId: 'c1', seq, rev: ++rev, kind: 'user', sender: { id: 'u1', username: 'u1' }, text: `t${seq}`, clientMsgId: `k${seq}`,
    createdAt: new Date(0).toISOString(), deleted: false, mentions: [], reactions: [],
  });
  /** New messages, committed: deliveries of them as message.new. */
  const commit = (...seqs: number[]) => seqs.map((s) => {
    const m = msg(s);
    committed.push(m);
    return { message: m, isNew: true };
  });
  /** An edit of a committed message: it takes the next rev (the table keeps only its latest state). */
  const edit = (seq: number) => {
    const i = committed.findIndex((m) => m.seq === seq);
    const m = { ...committed[i], rev: ++rev, text: `edited ${seq}` };
    committed[i] = m;
    return { message: m, isNew: false };
  };
  const toRow = (m: MessageView): MessageRow => ({
    id: m.id, channel_id: m.channelId, seq: m.seq, rev: m.rev, sender_id: m.sender!.id, sender_username: m.sender!.username, text: m.text,
    client_msg_id: m.clientMsgId, created_at: 0, edited_at: null, deleted_at: null, reply_to: null, mentions: null, reactions: null,
  });
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeEach(() => {
    committed = [];
    delivered = [];
    rev = 0;
    failReads = false;
    closed = [];
    const messages = {
      changes: async (_channelId: string, q: { afterRev: number; limit: number }) => {
        if (failReads) throw new Error('database unreachable');
        return committed.filter((m) => m.rev > q.afterRev).sort((a, b) => a.rev - b.rev).slice(0, q.limit + 1).map(toRow);
      },
    } as unknown as MessageStore;
    const store = {
      applyMessage: (s: ChannelState, m: MessageView) => {
        if (m.seq > s.headSeq) s.headSeq = m.seq;
      },
      applyUpdate: () => undefined,
      cached: () => [state][Symbol.iterator](),
      heads: async () => new Map([['c1', { headSeq: Math.max(0, ...committed.map((m) => m.seq)), headRev: rev }]]),
    } as unknown as ChannelStateStore;
    const registry = { of: () => new Set([{ close: (code: number) => closed.push(code) }]) } as unknown as ConnectionRegistry;
    const config = { busGapWaitMs: GAP_WAIT, busHeadCheckMs: 60_000 } as AppConfig;
    sequencer = new ChannelSequencer(store, messages, { clustered: false } as FanoutBus, registry, config, new MetricsService());
    sequencer.deliver = (_s, items) => delivered.push(...items.map((d) => (d.isNew ? d.message.seq : `u${d.message.seq}`)));
    state = {
      id: 'c1', kind: 'channel', name: 'c', visibility: 'public', createdAt: 0, headSeq: 0, headRev: 0, lastMessage: null, members: new Map([['u1', {} as never]]),
      deletedSeqs: [], mentions: new Map(), loadedHeadSeq: 0, loadedHeadRev: 0, deliveredRev: null, deliveredSeq: null,
    };
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
    state.loadedHeadRev = 2;
    sequencer.push(state, [{ message: committed[1], isNew: true }]);
    expect(delivered).toEqual([2]);
  });

  it('puts changes out in rev order with the new messages around them', () => {
    sequencer.push(state, commit(1, 2));
    sequencer.push(state, [edit(1)]);
    sequencer.push(state, commit(3));
    expect(delivered).toEqual([1, 2, 'u1', 3]);
  });

  it('holds a change that overtook a new message, and drops a repeated change', async () => {
    sequencer.push(state, commit(1));
    const m2 = commit(2);
    const e1 = edit(1);
    sequencer.push(state, [e1]);
    expect(delivered).toEqual([1]);
    sequencer.push(state, m2);
    sequencer.push(state, [e1]);
    expect(delivered).toEqual([1, 2, 'u1']);
  });

  it('refills lost changes with the current state of each message: new ones by seq, then the changed ones', async () => {
    sequencer.push(state, commit(1, 2));
    commit(3); // rev 3, lost
    edit(1); // rev 4, lost
    edit(3); // rev 5: message 3's row now has rev 5
    const after = commit(4); // rev 6 arrives: a gap of 3..5
    sequencer.push(state, after);
    await wait(GAP_WAIT * 3);
    // 3 goes out once, in its current (edited) state, as a new message; 1's edit as an update.
    expect(delivered).toEqual([1, 2, 3, 4, 'u1']);
    expect(state.deliveredRev).toBe(6);
    sequencer.push(state, [edit(2)]);
    expect(delivered).toEqual([1, 2, 3, 4, 'u1', 'u2']);
  });

  it('finds a change lost at the end of a burst by comparing heads with the database', async () => {
    sequencer.push(state, commit(1));
    edit(1); // committed elsewhere, its announcement lost
    await sequencer.checkHeads('head_check');
    expect(delivered).toEqual([1, 'u1']);
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
