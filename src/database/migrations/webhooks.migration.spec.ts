import { migrationKit } from '../../../test/helpers/migrations.js';
import { DATABASES } from '../../../test/helpers/test-app.js';

/** The Webhooks migration on a database with memberships from before it, down and up again. */
describe.each(DATABASES)('Webhooks migration on %s', (db) => {
  it('leaves existing memberships unmuted, and reverts cleanly', async () => {
    const { all, open, cleanup } = migrationKit(db);
    const index = all.findIndex((m) => m.name.startsWith('Webhooks'));
    const ds = await open(all);
    try {
      for (let i = all.length - 1; i >= index; i--) await ds.undoLastMigration({ transaction: 'all' });
      await ds.query(`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ('u1', 'ann', 'ann', 'x', 1)`);
      await ds.query(`INSERT INTO channels (id, kind, name, name_key, visibility, created_at) VALUES ('c1', 'channel', 'Hall', 'hall', 'public', 1)`);
      await ds.query(`INSERT INTO memberships (channel_id, user_id, role, joined_at) VALUES ('c1', 'u1', 'member', 1234)`);
      await ds.runMigrations({ transaction: 'all' });
      expect(await ds.query(`SELECT muted_at FROM memberships`)).toEqual([{ muted_at: null }]);
      expect(await ds.query(`SELECT * FROM webhook_outbox`)).toEqual([]);
      await ds.query(`INSERT INTO webhook_outbox (event_id, type, ordering_key, body, created_at, next_attempt_at) VALUES ('e', 'user.created', 'u1', '{}', 1, 1)`);
      expect((await ds.query(`SELECT attempts, lease_until, leased_by FROM webhook_outbox`)).map((r: Record<string, unknown>) => [Number(r.attempts), Number(r.lease_until), r.leased_by])).toEqual([[0, 0, null]]);
    } finally {
      await ds.destroy();
      await cleanup();
    }
  });
});
