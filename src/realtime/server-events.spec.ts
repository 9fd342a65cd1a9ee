import { jest } from '@jest/globals';
import type { MessageView } from '../messages/message.mapper.js';
import { frame, messageAckFrame, messageJson, messageNewFrame, messageUpdatedFrame } from './server-events.js';

describe('message frames from the cached JSON', () => {
  const message: MessageView = {
    id: 'm1', channelId: 'c1', seq: 3, rev: 5, kind: 'user', sender: { id: 'a', username: 'a' }, text: 'he said "hi"\n\u2028é', clientMsgId: 'k',
    createdAt: '2026-01-01T00:00:00.000Z', deleted: false, mentions: [{ id: 'b', username: 'b' }], reactions: [],
  };

  it('are the bytes frame() gives', () => {
    expect(messageNewFrame(message)).toBe(frame('message.new', { message }));
    expect(messageUpdatedFrame(message)).toBe(frame('message.updated', { message }));
    expect(messageJson(message)).toBe(JSON.stringify(message));
    for (const ack of [
      { clientMsgId: 'k"1', message, duplicate: false },
      { clientMsgId: 'k', message, duplicate: true, ref: 'r"\n' },
      { clientMsgId: 'k', message, duplicate: false, ref: undefined },
    ]) expect(messageAckFrame(ack)).toBe(frame('message.ack', ack));
  });

  it('serialize a view once: a new view (a change) is serialized anew', () => {
    const view = { ...message };
    const edited = { ...message, rev: 6, text: 'edited' };
    const spy = jest.spyOn(JSON, 'stringify');
    try {
      messageNewFrame(view);
      messageUpdatedFrame(view);
      messageJson(view);
      expect(spy).toHaveBeenCalledTimes(1);
      const json = messageUpdatedFrame(edited);
      expect(spy).toHaveBeenCalledTimes(2);
      expect(json).toBe(frame('message.updated', { message: edited }));
    } finally {
      spy.mockRestore();
    }
  });
});
