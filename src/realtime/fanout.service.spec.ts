import type { ChannelState } from '../channels/channel-state.store.js';
import { toConversation } from '../channels/conversation.mapper.js';
import { ChannelsService } from '../channels/channels.service.js';
import { FanoutService } from './fanout.service.js';
import { frame } from './server-events.js';

describe('FanoutService.conversationFrames', () => {
  const channels = { conversationFor: (s: ChannelState, u: string) => toConversation(s, u, () => 'online') } as unknown as ChannelsService;
  const fanout = new FanoutService(null as never, null as never, null as never, null as never, channels, null as never, null as never, null as never, null as never);
  const member = (userId: string, lastReadSeq: number, acceptedAt: number | null = 0, mutedAt: number | null = null) =>
    [userId, { userId, username: userId, role: 'member' as const, lastReadSeq, joinedAt: 0, acceptedAt, mutedAt }] as const;

  it('splices the per-user numbers, acceptance and mute into exactly the JSON a full serialization gives', () => {
    const state: ChannelState = {
      id: 'c1', kind: 'channel', name: 'gen"eral', visibility: 'public', createdAt: 0, headSeq: 7, headRev: 9,
      lastMessage: {
        id: 'm', channelId: 'c1', seq: 7, rev: 9, kind: 'user', sender: { id: 'a', username: 'a' }, text: 'he said "hi"\n', clientMsgId: 'k', createdAt: '2026-01-01T00:00:00.000Z',
        deleted: false, mentions: [{ id: 'b', username: 'b' }], reactions: [],
      },
      members: new Map([member('a', 7), member('b', 3, 0, 1234), member('c', 0, null)]),
      deletedSeqs: [2, 5], mentions: new Map([['b', [6, 7]], ['c', [1]]]),
      loadedHeadSeq: 7, loadedHeadRev: 9, deliveredRev: null, deliveredSeq: null,
    };
    const build = fanout.conversationFrames(state);
    expect(JSON.parse(build('c')).data.conversation.accepted).toBe(false);
    expect([JSON.parse(build('a')).data.conversation.muted, JSON.parse(build('b')).data.conversation.muted]).toEqual([false, true]);
    // Deleted messages above the marker do not count; mentions count while unread.
    expect(JSON.parse(build('b')).data.conversation).toMatchObject({ unreadCount: 3, mentionCount: 2 });
    expect(JSON.parse(build('c')).data.conversation).toMatchObject({ unreadCount: 5, mentionCount: 1 });
    for (const u of ['a', 'b', 'c']) {
      expect(JSON.parse(build(u))).toEqual(JSON.parse(frame('conversation.update', { conversation: toConversation(state, u, () => 'online') })));
    }
  });

  it('builds DMs in full, with the peer as name', () => {
    const state: ChannelState = {
      id: 'd1', kind: 'dm', name: null, visibility: 'private', createdAt: 0, headSeq: 0, headRev: 0, lastMessage: null,
      members: new Map([member('a', 0), member('b', 0)]), deletedSeqs: [], mentions: new Map(), loadedHeadSeq: 0, loadedHeadRev: 0, deliveredRev: null, deliveredSeq: null,
    };
    expect(JSON.parse(fanout.conversationFrames(state)('a')).data.conversation).toMatchObject({ name: 'b', peer: { id: 'b', status: 'online' } });
  });
});
