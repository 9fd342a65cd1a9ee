import * as ws from 'ws';
import { framesAfter, textFrame } from './ws-frame.js';

/** The pre-built frames must parse, with ws's own Receiver, back to the same text. */
describe('textFrame', () => {
  const { Receiver, Sender } = ws as unknown as {
    Receiver: new (opts: object) => NodeJS.WritableStream & { on(e: 'message', f: (d: Buffer, isBinary: boolean) => void): void };
    Sender: { frame(data: Buffer, options: object): Buffer[] };
  };
  const read = (bytes: Buffer) => {
    const received: [string, boolean][] = [];
    const receiver = new Receiver({ isServer: false, maxPayload: 1 << 30 });
    receiver.on('message', (data, isBinary) => received.push([data.toString(), isBinary]));
    receiver.write(bytes);
    return received;
  };
  const sizes = [0, 5, 125, 126, 65535, 65536, 200_000];
  const textOf = (size: number) => 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2);

  it.each(sizes)('frames a %i-byte text the way ws reads it', (size) => {
    const text = textOf(size);
    expect(read(Buffer.concat([textFrame(text), textFrame('next')]))).toEqual([[text, false], ['next', false]]);
  });

  it.each(sizes)('builds the same bytes as ws for a %i-byte text', (size) => {
    const data = Buffer.from(textOf(size));
    const theirs = Buffer.concat(Sender.frame(data, { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
    expect(textFrame(data).equals(theirs)).toBe(true);
    expect(textFrame(textOf(size)).equals(theirs)).toBe(true);
  });

  it.each(sizes)('appends a %i-byte frame to shared frames in one buffer', (size) => {
    const shared = Buffer.concat([textFrame('one'), textFrame('two')]);
    const text = textOf(size);
    const both = framesAfter(shared, text);
    expect(both.equals(Buffer.concat([shared, textFrame(text)]))).toBe(true);
    expect(read(both)).toEqual([['one', false], ['two', false], [text, false]]);
    expect(shared.equals(Buffer.concat([textFrame('one'), textFrame('two')]))).toBe(true);
  });
});
