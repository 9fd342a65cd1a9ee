import { RevokedSessions } from './revoked-sessions.js';

describe('RevokedSessions', () => {
  let now: number;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('refuses an ended session for one token lifetime after its end, and forgets it then', () => {
    const set = new RevokedSessions(60_000, 10, clock);
    expect(set.add('a', now)).toBe(true);
    expect(set.check('a')).toBe('revoked');
    expect(set.has('a')).toBe(true);
    expect(set.check('b')).toBe('live');
    now += 59_999;
    expect(set.has('a')).toBe(true);
    now += 1;
    // Every access token of the session has expired by now: nothing left to refuse.
    expect(set.check('a')).toBe('live');
    set.add('c', now);
    expect(set.size).toBe(1);
  });

  it('ignores ends whose tokens have all expired, and repeats', () => {
    const set = new RevokedSessions(60_000, 10, clock);
    expect(set.add('old', now - 60_000)).toBe(false);
    expect(set.check('old')).toBe('live');
    expect(set.add('a', now)).toBe(true);
    expect(set.add('a', now)).toBe(false);
    expect(set.size).toBe(1);
  });

  it('past its bound drops the oldest, and says "unknown" for unlisted sessions until their tokens could have expired', () => {
    const set = new RevokedSessions(60_000, 3, clock);
    for (const id of ['a', 'b', 'c']) {
      set.add(id, now);
      now += 1000;
    }
    expect(set.check('x')).toBe('live');
    set.add('d', now); // 'a' (ended at 1_000_000) makes room
    expect(set.size).toBe(3);
    expect(set.check('d')).toBe('revoked');
    expect(set.check('a')).toBe('unknown');
    expect(set.check('x')).toBe('unknown'); // might have been dropped too: ask the database
    expect(set.has('x')).toBe(false); // the per-frame form does not ask
    now = 1_000_000 + 60_000;
    expect(set.check('x')).toBe('live');
  });
});
