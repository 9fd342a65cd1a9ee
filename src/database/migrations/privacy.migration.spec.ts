import { migrationKit } from '../../../test/helpers/migrations.js';
import { DATABASES } from '../../../test/helpers/test-app.js';

/** The Privacy migration on a database that has data from before it. */
describe.each(DATABASES)('Privacy migration on %s', (db) => {
  it('keeps every existing membership accepted and frees private channel names', async () => {
    const { all, open, cleanup } = migrationKit(db);
    try {
      const before = await open(all.slice(0, 1));
      await before.query(`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ('u1', 'ann', 'ann', 'x', 1)`);
      await before.query(`INSERT INTO channels (id, kind, name, name_key, visibility, created_at) VALUES ('c1', 'channel', 'Ops', 'ops', 'private', 1), ('c2', 'channel', 'Hall', 'hall', 'public', 1)`);
      await before.query(`INSERT INTO memberships (channel_id, user_id, role, joined_at) VALUES ('c1', 'u1', 'member', 1234)`);
      await before.destroy();

      const after = await open(all);
      try {
        expect((await after.query(`SELECT accepted_at FROM memberships`)).map((r: { accepted_at: unknown }) => Number(r.accepted_at))).toEqual([1234]);
        const keys = await after.query(`SELECT id, name, name_key FROM channels ORDER BY id`);
        expect(keys).toEqual([{ id: 'c1', name: 'Ops', name_key: null }, { id: 'c2', name: 'Hall', name_key: 'hall' }]);
        expect(await after.query(`SELECT * FROM blocks`)).toEqual([]);
      } finally {
        await after.destroy();
      }
    } finally {
      await cleanup();
    }
  });
});
