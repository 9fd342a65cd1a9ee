import * as ws from 'ws';
import { textFrame } from './ws-frame.js';

/** The pre-built frames must parse, with ws's own Receiver, back to the same text. */
describe('textFrame', () => {
  const { Receiver } = ws as unknown as { Receiver: new (opts: object) => NodeJS.WritableStream & { on(e: 'message', f: (d: Buffer, isBinary: boolean) => void): void } };

  it.each([0, 5, 125, 126, 65535, 65536, 200_000])('frames a %i-byte text the way ws reads it', (size) => {
    const text = 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2);
    const received: [string, boolean][] = [];
    const receiver = new Receiver({ isServer: false, maxPayload: 1 << 30 });
    receiver.on('message', (data, isBinary) => received.push([data.toString(), isBinary]));
    receiver.write(Buffer.concat([textFrame(text), textFrame('next')]));
    expect(received).toEqual([[text, false], ['next', false]]);
  });
});
