import { migrationKit } from '../../../test/helpers/migrations.js';
import { DATABASES } from '../../../test/helpers/test-app.js';
import { SYSTEM_USER_ID } from '../../users/system-user.js';

/** The Embedding migration on a database that has users and messages from before it. */
describe.each(DATABASES)('Embedding migration on %s', (db) => {
  it('keeps existing users (no profile, no external id, active), adds the system user, and keeps external ids unique', async () => {
    const { all, open, cleanup } = migrationKit(db);
    try {
      const before = await open(all.slice(0, -1));
      await before.query(`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ('u1', 'ann', 'ann', 'x', 1), ('u2', 'bob', 'bob', 'y', 2)`);
      await before.destroy();

      const after = await open(all);
      try {
        const users = await after.query(`SELECT id, username, display_name, avatar_url, metadata, external_id, deactivated_at FROM users ORDER BY id`);
        expect(users.map((u: { id: string }) => u.id)).toEqual([SYSTEM_USER_ID, 'u1', 'u2']);
        expect(users[1]).toMatchObject({ username: 'ann', display_name: null, avatar_url: null, metadata: null, external_id: null, deactivated_at: null });
        expect(users[0]).toMatchObject({ username: 'system' });
        expect(users[0].deactivated_at).not.toBeNull();
        await after.query(`UPDATE users SET external_id = 'x-1' WHERE id = 'u1'`);
        await expect(after.query(`UPDATE users SET external_id = 'x-1' WHERE id = 'u2'`)).rejects.toThrow();
        expect(await after.query(`SELECT * FROM audit_log`)).toEqual([]);
      } finally {
        await after.destroy();
      }
    } finally {
      await cleanup();
    }
  });
});
