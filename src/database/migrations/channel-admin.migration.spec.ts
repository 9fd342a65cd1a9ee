import { migrationKit } from '../../../test/helpers/migrations.js';
import { DATABASES } from '../../../test/helpers/test-app.js';

/** The ChannelAdmin migration on a database that has channels from before it. */
describe.each(DATABASES)('ChannelAdmin migration on %s', (db) => {
  it("names each channel's owner as its creator, and leaves everything shown and unarchived", async () => {
    const { all, open, cleanup } = migrationKit(db);
    const at = all.findIndex((m) => m.name.endsWith('ChannelAdmin1795403431482'));
    try {
      expect(at).toBeGreaterThan(0);
      const before = await open(all.slice(0, at));
      await before.query(`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ('u1', 'ann', 'ann', 'x', 1), ('u2', 'bo', 'bo', 'x', 1)`);
      await before.query(`INSERT INTO channels (id, kind, name, name_key, visibility, created_at) VALUES ('c1', 'channel', 'Ops', NULL, 'private', 1), ('d1', 'dm', NULL, NULL, 'private', 1)`);
      await before.query(`INSERT INTO memberships (channel_id, user_id, role, joined_at) VALUES ('c1', 'u1', 'owner', 1), ('c1', 'u2', 'member', 1), ('d1', 'u1', 'member', 1), ('d1', 'u2', 'member', 1)`);
      await before.destroy();

      const after = await open(all);
      try {
        const channels = await after.query(`SELECT id, topic, created_by, archived_at FROM channels ORDER BY id`);
        expect(channels).toEqual([
          { id: 'c1', topic: null, created_by: 'u1', archived_at: null },
          { id: 'd1', topic: null, created_by: null, archived_at: null },
        ]);
        expect((await after.query(`SELECT hidden_seq FROM memberships`)).every((r: { hidden_seq: unknown }) => r.hidden_seq === null)).toBe(true);
        await after.undoLastMigration({ transaction: 'all' });
      } finally {
        await after.destroy();
      }
    } finally {
      await cleanup();
    }
  });
});
