import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { parseSendFrame, SendFrameDto } from './frames.dto.js';

/** The fast parser may accept only what the decorators accept. */
describe('parseSendFrame', () => {
  const decoratorsAccept = (v: object) =>
    validateSync(plainToInstance(SendFrameDto, v), { whitelist: true, forbidNonWhitelisted: true }).length === 0;

  const pick = <T>(xs: T[], r: () => number): T => xs[Math.floor(r() * xs.length)];
  // A small seeded generator: the same cases on every run.
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const values: unknown[] = [
    undefined, null, '', ' ', '\n\t', 'hi', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(4000), 'x'.repeat(4001), 3, true, [], {},
    '7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11', '7b0c6f1e-9d1f-0a8e-9c55-3f1e2d1b0a11', '00000000-0000-0000-0000-000000000000',
    'not-a-uuid', 'bob', 'b'.repeat(32), 'b'.repeat(33),
  ];
  const keys = ['channelId', 'to', 'text', 'clientMsgId', 'ref', 'extra', '__proto__'];

  it('accepts plainly valid frames', () => {
    const dto = parseSendFrame({ channelId: '7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11', text: 'hi', clientMsgId: 'c1', ref: 'r' });
    expect(dto).toBeInstanceOf(SendFrameDto);
    expect(parseSendFrame({ to: 'bob', text: 'hi', clientMsgId: 'c1' })).toBeInstanceOf(SendFrameDto);
  });

  it('never accepts what the decorators refuse (5,000 generated frames)', () => {
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const frame: Record<string, unknown> = {};
      for (const k of keys) if (rand() < 0.5) frame[k] = pick(values, rand);
      if (rand() < 0.6) Object.assign(frame, { text: pick(['hi', ' x ', 'x'.repeat(4000)], rand), clientMsgId: 'c' });
      const parsed = JSON.parse(JSON.stringify(frame)) as object;
      if (parseSendFrame(parsed)) {
        accepted++;
        expect([parsed, decoratorsAccept(parsed)]).toEqual([parsed, true]);
      }
    }
    expect(accepted).toBeGreaterThan(50);
  });
});
