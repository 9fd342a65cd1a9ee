import fc from 'fast-check';
import { AppError } from '../../common/app-error.js';
import { compileProblem, fastValidator } from '../../common/fast-validator.js';
import { MAX_SEQ } from '../../common/int-field.decorator.js';
import { createValidationPipe, fastTransform } from '../../common/validation.js';
import { HistoryQueryDto } from '../../messages/dto/message.dto.js';
import {
  ChangeFrameDto, ChannelFrameDto, EditFrameDto, FrameDto, HistoryFrameDto, JoinFrameDto, ReactionFrameDto, ReadFrameDto, SendFrameDto, SyncFrameDto,
} from './frames.dto.js';

/**
 * The compiled validators (fast-validator.ts) against the decorators' own path (the same
 * ValidationPipe without them): what the fast path accepts, the decorators accept, as the same
 * DTO; and for the frames that compile, what the decorators accept the fast path accepts too
 * (so the fast path is really the one taken).
 */
const FRAME_DTOS = {
  FrameDto, SendFrameDto, JoinFrameDto, ChannelFrameDto, ReadFrameDto, SyncFrameDto, ChangeFrameDto, EditFrameDto, ReactionFrameDto, HistoryFrameDto,
} as const;
type Dto = new () => object;

const decorators = createValidationPipe({ fast: false });
/** The decorators' verdict: the DTO, or the AppError they word (never another error). */
async function decoratorPath(dto: Dto, payload: unknown): Promise<object | AppError> {
  try {
    return (await decorators.transform(payload, { type: 'body', metatype: dto })) as object;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
}

describe('compiled frame validators', () => {
  it('compile for every frame DTO (none falls back for want of a known constraint)', () => {
    const problems = Object.fromEntries(Object.entries(FRAME_DTOS).map(([name, dto]) => [name, compileProblem(dto)]));
    expect(problems).toEqual(Object.fromEntries(Object.keys(FRAME_DTOS).map((name) => [name, null])));
  });

  it('never compile what they do not understand: such a DTO always falls back', () => {
    // @Transform (query strings): class-transformer decides the value, not a copy.
    expect(compileProblem(HistoryQueryDto)).toMatch(/class-transformer/);
    expect(fastValidator(HistoryQueryDto)({ limit: 5 })).toBeUndefined();
    // No rules at all: class-validator refuses every payload (forbidUnknownValues).
    class Bare {}
    expect(compileProblem(Bare)).toMatch(/no validation metadata/);
  });

  it('accept plainly valid frames as the DTO, defaults included', () => {
    const channelId = '7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11';
    const send = fastTransform(SendFrameDto, { channelId, text: 'hi', clientMsgId: 'c1', ref: 'r' });
    expect(send).toBeInstanceOf(SendFrameDto);
    expect(fastTransform(HistoryFrameDto, { channelId })).toEqual(Object.assign(new HistoryFrameDto(), { channelId, limit: 50 }));
    expect(fastTransform(SendFrameDto, { channelId, text: 'hi\u0000', clientMsgId: 'c1' })).toBeUndefined();
  });

  // ---- generated payloads: valid ones and their near misses ----

  const uuid = fc.oneof(
    fc.uuid({ version: [1, 2, 3, 4, 5, 6, 7, 8] }),
    fc.uuid({ version: [4] }).map((u) => u.toUpperCase()),
    fc.constantFrom(
      '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
      '7b0c6f1e-9d1f-0a8e-9c55-3f1e2d1b0a11', '7b0c6f1e-9d1f-9a8e-9c55-3f1e2d1b0a11', '7b0c6f1e-9d1f-4a8e-7c55-3f1e2d1b0a11',
      'urn:uuid:7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a11', '7b0c6f1e9d1f4a8e9c553f1e2d1b0a11', '7b0c6f1e-9d1f-4a8e-9c55-3f1e2d1b0a1', 'not-a-uuid',
    ),
  );
  /** Strings at and around the bounds the DTOs use, in code points and in UTF-16 units. */
  const sized = (n: number) => fc.constantFrom('x', 'é', '😀', 'a\uFE0F', ' ').map((c) => c.repeat(n));
  const text = fc.oneof(
    fc.string({ minLength: 0, maxLength: 12 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }),
    fc.constantFrom('', ' ', '\n\t', '\u200B', '\u3164', '\u2800', '\u0301', 'hi', ' x ', 'a\u0000b', 'a\u001Bb', '\uD800', 'x\uDC00'),
    fc.constantFrom(1, 31, 32, 33, 63, 64, 65, 200, 201).chain(sized),
    fc.constantFrom(3999, 4000, 4001).chain(sized),
  );
  const int = fc.oneof(
    fc.integer({ min: -2, max: 300 }),
    fc.constantFrom(0, 1, 199, 200, 201, MAX_SEQ, MAX_SEQ + 1, -1, 1.5, 1e21, -0),
    fc.constantFrom('5', '1e2', true, null),
  );
  const name = fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/), fc.constantFrom('', '-x', 'a b', 'x'.repeat(65)));
  const emoji = fc.constantFrom('👍', '👍🏽', '❤️', '👨‍👩‍👧', '🇫🇷', '1️⃣', ':tada:', ':Bad:', 'ab', '👍👍', '', ':' + 'x'.repeat(33) + ':');
  const cursor = fc.oneof(int, fc.record({ seq: int, rev: fc.option(int, { nil: undefined }) }, { requiredKeys: ['seq'] }), fc.constant([1]));
  const channels = fc.oneof(
    fc.dictionary(uuid, cursor, { maxKeys: 3 }),
    fc.constantFrom({}, [], 'x', null, { a: { b: [1, { c: 2 }] } }),
  );
  const anything = fc.oneof(text, int, uuid, fc.constantFrom(null, true, false, [], {}, ['x'], { x: 1 }));

  /** Values that fit each field name (and near misses); any field may also get anything at all. */
  const byField: Record<string, fc.Arbitrary<unknown>> = {
    ref: text, text, clientMsgId: text, to: text, channelId: uuid, name, emoji,
    seq: int, replyToSeq: int, beforeSeq: int, limit: int, channels,
  };
  const fieldValue = (field: string) => fc.oneof({ arbitrary: Object.hasOwn(byField, field) ? byField[field] : anything, weight: 6 }, { arbitrary: anything, weight: 1 });

  /**
   * A payload for a DTO: each of its fields (and a few it does not have) present or not. Built as
   * JSON text and parsed, as the adapter does, so that `__proto__` is an own key.
   */
  const payload = (dto: Dto) => {
    const own = Object.keys(FIELDS[dto.name]);
    const fields = [...new Set([...own, 'extra', 'channelId', 'text', 'limit', '__proto__', 'constructor'])];
    return fc
      .tuple(
        ...fields.map((f) =>
          own.includes(f)
            ? fc.option(fieldValue(f), { nil: undefined, freq: 4 })
            : // Other fields are rare: most payloads should be worth validating.
              fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, { arbitrary: fieldValue(f), weight: 1 }),
        ),
      )
      .map((values) => `{${fields.flatMap((f, i) => (values[i] === undefined ? [] : [`${JSON.stringify(f)}:${JSON.stringify(values[i])}`])).join(',')}}`);
  };

  /** Each frame DTO's fields, as the protocol documents them (the test's own list, not the decorators'). */
  const FIELDS: Record<string, Record<string, true>> = {
    FrameDto: { ref: true },
    SendFrameDto: { ref: true, channelId: true, to: true, text: true, clientMsgId: true, replyToSeq: true },
    JoinFrameDto: { ref: true, name: true, channelId: true },
    ChannelFrameDto: { ref: true, channelId: true },
    ReadFrameDto: { ref: true, channelId: true, seq: true },
    SyncFrameDto: { ref: true, channels: true, limit: true },
    ChangeFrameDto: { ref: true, channelId: true, seq: true },
    EditFrameDto: { ref: true, channelId: true, seq: true, text: true },
    ReactionFrameDto: { ref: true, channelId: true, seq: true, emoji: true },
    HistoryFrameDto: { ref: true, channelId: true, beforeSeq: true, limit: true },
  };

  for (const [dtoName, dto] of Object.entries(FRAME_DTOS) as [string, Dto][]) {
    it(`${dtoName}: the fast path accepts exactly what the decorators accept, as the same DTO`, async () => {
      let accepted = 0;
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(payload(dto), async (json) => {
          const fast = fastTransform(dto, JSON.parse(json));
          const slow = await decoratorPath(dto, JSON.parse(json));
          if (slow instanceof AppError) {
            refused++;
            // Refused by the decorators: the fast path must not accept it.
            expect({ json, fast }).toEqual({ json, fast: undefined });
          } else {
            accepted++;
            // Accepted: the fast path takes it, and makes the same DTO (class, fields, defaults).
            expect({ json, fast }).toStrictEqual({ json, fast: slow });
          }
        }),
        { numRuns: 1500, seed: 12 },
      );
      // Both sides of the property were exercised.
      expect(accepted).toBeGreaterThan(20);
      expect(refused).toBeGreaterThan(20);
    });
  }
});
