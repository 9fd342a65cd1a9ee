import { AppError } from '../common/app-error.js';
import { newMessage, type Outcome, type Request, type SendRequest } from './message-batch.js';
import { messageJson } from '../realtime/server-events.js';
import { decodeReply, encode, fromWire, toWire } from './writer-wire.js';

/**
 * The writer thread sends back only what a transaction made of a new message; the main thread
 * rebuilds the message. Rebuilt, it must be the batch's own message: same fields, same key order
 * (the same JSON goes to the sender and every member).
 */
describe('writer thread wire', () => {
  const sender = { id: '0198a3b2-0000-7000-8000-000000000001', username: 'ana' };
  const send = (extra: Partial<SendRequest> = {}): SendRequest => ({
    channelId: '0198a3b2-0000-7000-8000-0000000000c1', sender, text: 'hi @bo', clientMsgId: 'c-1', ...extra,
  });
  const made = { id: '0198a3b2-0000-7000-8000-0000000000f1', seq: 7, rev: 9, createdAt: '2026-11-23T10:00:00.000Z' };

  const roundTrip = (req: Request, o: Outcome | AppError) => {
    const reply = decodeReply(encode({ id: 1, outcomes: [toWire(o)], transactions: 1, appended: false }));
    if (!('outcomes' in reply)) throw new Error('no outcomes');
    return fromWire(req, reply.outcomes[0]);
  };

  it.each([
    ['a plain message', send()],
    ['one with mentions', send({ mentions: [{ id: '0198a3b2-0000-7000-8000-000000000002', username: 'bo' }] })],
    ['a system message', send({ system: true, sender: { id: '00000000-0000-0000-0000-000000000000', username: 'system' } })],
  ])('rebuilds %s as the batch made it, down to the JSON', (_name, req) => {
    const message = newMessage(req, made);
    const back = roundTrip(req, { message, duplicate: false }) as Outcome;
    expect(back).toEqual({ message, duplicate: false });
    expect(messageJson(back.message)).toBe(messageJson(message));
  });

  it('carries a reply snapshot back (it is read in the transaction, not known before)', () => {
    const req = send({ replyToSeq: 3 });
    const message = newMessage(req, { ...made, replyTo: { seq: 3, sender, text: 'lunch?' } });
    const wire = toWire({ message, duplicate: false });
    expect(wire).toEqual({ made: { ...made, replyTo: { seq: 3, sender, text: 'lunch?' } } });
    expect(messageJson((roundTrip(req, { message, duplicate: false }) as Outcome).message)).toBe(messageJson(message));
  });

  it('carries a duplicate whole (the stored original, not this request), and an error as an AppError', () => {
    const original = newMessage(send({ text: 'first' }), made);
    expect(roundTrip(send({ text: 'retry' }), { message: original, duplicate: true })).toEqual({ message: original, duplicate: true });
    const back = roundTrip(send(), new AppError('forbidden', 'not a member of this channel', { channelId: 'x' }));
    expect(back).toBeInstanceOf(AppError);
    expect(back).toMatchObject({ code: 'forbidden', message: 'not a member of this channel', details: { channelId: 'x' } });
  });
});
