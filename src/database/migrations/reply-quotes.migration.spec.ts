import { migrationKit } from '../../../test/helpers/migrations.js';
import { DATABASES } from '../../../test/helpers/test-app.js';
import { REPLIES_SQL } from '../../messages/sqlite-ops.js';

/** The ReplyQuotes migration: the partial index that finds a deleted message's replies, and its undo. */
describe.each(DATABASES)('ReplyQuotes migration on %s', (db) => {
  it('adds the partial index on (channel_id, reply_to_seq), which the replies query uses, and removes it again', async () => {
    const { all, open, cleanup, target } = migrationKit(db);
    const ds = await open(all);
    const indexes = async (): Promise<string[]> =>
      target.type === 'sqlite'
        ? (await ds.query(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'idx_messages_reply_to'`)).map((r: { sql: string }) => r.sql)
        : (await ds.query(`SELECT indexdef AS sql FROM pg_indexes WHERE indexname = 'idx_messages_reply_to'`)).map((r: { sql: string }) => r.sql);
    try {
      const [sql] = await indexes();
      expect(sql).toMatch(/channel_id.*reply_to_seq/);
      expect(sql).toMatch(/WHERE.*reply_to_seq.* IS NOT NULL/i);
      if (target.type === 'sqlite') {
        // A term `reply_to_seq = ?` implies the index's `IS NOT NULL`: the planner may use it.
        const plan = await ds.query(`EXPLAIN QUERY PLAN ${REPLIES_SQL.replace(/\$\d+/g, '?')}`, ['c', 1]);
        expect(plan.map((r: { detail: string }) => r.detail).join('\n')).toMatch(/USING INDEX idx_messages_reply_to/);
      }
      await ds.undoLastMigration({ transaction: 'all' });
      expect(await indexes()).toEqual([]);
    } finally {
      await ds.destroy();
      await cleanup();
    }
  });
});
