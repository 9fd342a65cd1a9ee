/** What the in-memory set can say about a session id without asking the database. */
export type RevocationState = 'revoked' | 'live' | 'unknown';

/**
 * The sessions that ended while some of their access tokens may still be unexpired: checked on
 * every HTTP request and every WebSocket frame, so it is one Map look-up.
 *
 * An ended session's access tokens were all issued before it ended (refresh refuses it since),
 * so each expires at most one token lifetime after the end: the entry is kept that long and no
 * longer. The set is thus as large as the number of sessions ended per token lifetime; past
 * `max` the oldest entries are dropped, and until their tokens could have expired, a session
 * that is not listed is `unknown` (not `live`): the caller asks the database then.
 */
export class RevokedSessions {
  /** session id → when the last of its access tokens expires (epoch ms). Oldest first. */
  private readonly until = new Map<string, number>();
  /** Until then, an entry may have been dropped for room: an unlisted session is `unknown`. */
  private uncertainUntil = 0;

  constructor(
    private readonly tokenTtlMs: number,
    private readonly max = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.until.size;
  }

  /** Records that a session ended at `endedAt`; false when it was known already. */
  add(sessionId: string, endedAt: number): boolean {
    if (this.until.has(sessionId)) return false;
    const until = endedAt + this.tokenTtlMs;
    if (until <= this.now()) return false; // its tokens have all expired: nothing to refuse
    this.until.set(sessionId, until);
    this.prune();
    return true;
  }

  check(sessionId: string): RevocationState {
    const until = this.until.get(sessionId);
    const now = this.now();
    if (until !== undefined && until > now) return 'revoked';
    return now < this.uncertainUntil ? 'unknown' : 'live';
  }

  has(sessionId: string): boolean {
    return this.check(sessionId) === 'revoked';
  }

  /** Drops what has expired from the front, and the oldest past `max`. Amortized O(1) per add. */
  private prune(): void {
    const now = this.now();
    for (const [id, until] of this.until) {
      if (until > now && this.until.size <= this.max) break;
      this.until.delete(id);
      if (until > now) this.uncertainUntil = Math.max(this.uncertainUntil, until);
    }
  }
}
