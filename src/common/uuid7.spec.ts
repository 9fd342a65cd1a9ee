import { jest } from '@jest/globals';
import { uuid7 } from './uuid7.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe('uuid7', () => {
  afterEach(() => jest.restoreAllMocks());

  it('makes RFC 9562 version 7 ids whose timestamp is the time they were made', () => {
    const before = Date.now();
    const ids = Array.from({ length: 1000 }, () => uuid7());
    const after = Date.now();
    for (const id of ids) {
      expect(id).toMatch(V7);
      expect(msOf(id)).toBeGreaterThanOrEqual(before);
      expect(msOf(id)).toBeLessThanOrEqual(after + 1);
    }
  });

  it('sorts in the order the ids were made, within a millisecond and across pool refills (600 ids: more than one pool)', () => {
    jest.spyOn(Date, 'now').mockReturnValue(1_800_000_000_000);
    const ids = Array.from({ length: 600 }, () => uuid7());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('moves to the next millisecond when one millisecond has used up its counter', () => {
    jest.spyOn(Date, 'now').mockReturnValue(1_900_000_000_000);
    const ids = Array.from({ length: 5000 }, () => uuid7()); // more than 4096 in one millisecond
    expect([...ids].sort()).toEqual(ids);
    expect(msOf(ids[0])).toBe(1_900_000_000_000);
    expect(msOf(ids[ids.length - 1])).toBe(1_900_000_000_001);
  });

  it('spreads the random bits (no two of 10,000 ids share their last 62 bits)', () => {
    const tails = new Set(Array.from({ length: 10_000 }, () => uuid7().slice(19)));
    expect(tails.size).toBe(10_000);
  });
});
