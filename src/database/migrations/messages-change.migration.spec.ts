import { migrationKit } from '../../../test/helpers/migrations.js';
import { DATABASES } from '../../../test/helpers/test-app.js';

/** The MessagesChange migration (protocol v1.1) on a database holding messages from before it. */
describe.each(DATABASES)('MessagesChange migration on %s', (db) => {
  it('gives existing messages rev = seq and channels head_rev = head_seq, loses nothing, and indexes the old texts for search', async () => {
    const { target, all, before: upTo, open, cleanup } = migrationKit(db);
    try {
      const before = await open(upTo('MessagesChange'));
      await before.query(`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ('u1', 'ann', 'ann', 'x', 1)`);
      await before.query(`INSERT INTO channels (id, kind, name, name_key, visibility, head_seq, created_at) VALUES ('c1', 'channel', 'Hall', 'hall', 'public', 3, 1), ('c2', 'channel', 'Empty', 'empty', 'public', 0, 1)`);
      await before.query(`INSERT INTO memberships (channel_id, user_id, role, last_read_seq, joined_at, accepted_at) VALUES ('c1', 'u1', 'owner', 1, 1, 1)`);
      await before.query(
        `INSERT INTO messages (id, channel_id, seq, sender_id, text, client_msg_id, created_at) VALUES
         ('m1', 'c1', 1, 'u1', 'good morning', 'k1', 10), ('m2', 'c1', 2, 'u1', 'lunch at noon?', 'k2', 20), ('m3', 'c1', 3, 'u1', 'see you', 'k3', 30)`,
      );
      await before.destroy();

      const after = await open(all);
      try {
        const rows = await after.query(`SELECT id, seq, rev, text, edited_at, deleted_at, reply_to, mentions, reactions FROM messages ORDER BY seq`);
        expect(rows.map((r: Record<string, unknown>) => ({ ...r, seq: Number(r.seq), rev: Number(r.rev) }))).toEqual([
          { id: 'm1', seq: 1, rev: 1, text: 'good morning', edited_at: null, deleted_at: null, reply_to: null, mentions: null, reactions: null },
          { id: 'm2', seq: 2, rev: 2, text: 'lunch at noon?', edited_at: null, deleted_at: null, reply_to: null, mentions: null, reactions: null },
          { id: 'm3', seq: 3, rev: 3, text: 'see you', edited_at: null, deleted_at: null, reply_to: null, mentions: null, reactions: null },
        ]);
        expect((await after.query(`SELECT id, head_seq, head_rev FROM channels ORDER BY id`)).map((r: Record<string, unknown>) => [r.id, Number(r.head_seq), Number(r.head_rev)])).toEqual([
          ['c1', 3, 3],
          ['c2', 0, 0],
        ]);
        const found =
          target.type === 'sqlite'
            ? await after.query(`SELECT m.id FROM messages_fts f JOIN messages m ON m.rowid = f.rowid WHERE messages_fts MATCH '"lunch"*'`)
            : await after.query(`SELECT id FROM messages WHERE search @@ to_tsquery('simple', 'lunch:*')`);
        expect(found).toEqual([{ id: 'm2' }]);
        // A rev is unique per channel: the next change of the channel cannot reuse one.
        await expect(after.query(`UPDATE messages SET rev = 2 WHERE id = 'm3'`)).rejects.toThrow();
        expect(await after.query(`SELECT * FROM reactions`)).toEqual([]);
        expect(await after.query(`SELECT * FROM message_mentions`)).toEqual([]);
      } finally {
        await after.destroy();
      }
    } finally {
      await cleanup();
    }
  });
});
