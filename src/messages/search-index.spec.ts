import { migrationKit } from '../../test/helpers/migrations.js';

/**
 * SQLite's search index on its own: the batches MessageStore.indexPending writes, the triggers
 * that keep indexed rows in step, and a rowid SQLite hands out again after the newest rows were
 * deleted (it must be indexed again, not taken for indexed).
 */
describe('SQLite search index (FTS5, indexed in batches)', () => {
  it('indexes up to the mark, follows edits of indexed rows, and lowers the mark when the newest rows go', async () => {
    const { open, all, cleanup } = migrationKit('sqlite');
    const ds = await open(all);
    const q = (sql: string, params: unknown[] = []) => ds.query(sql, params);
    const find = async (word: string) => (await q(`SELECT m.id FROM messages_fts f JOIN messages m ON m.rowid = f.rowid WHERE messages_fts MATCH ? ORDER BY m.id`, [`"${word}"`])).map((r: { id: string }) => r.id);
    const indexAll = () => q(`INSERT INTO messages_fts(rowid, text) SELECT rowid, text FROM messages WHERE rowid > (SELECT indexed_rowid FROM messages_fts_state)`).then(() =>
      q(`UPDATE messages_fts_state SET indexed_rowid = (SELECT coalesce(max(rowid), 0) FROM messages)`));
    const insert = (id: string, seq: number, text: string) =>
      q(`INSERT INTO messages (id, channel_id, seq, rev, sender_id, text, client_msg_id, created_at) VALUES (?, 'c', ?, ?, 'u', ?, ?, 1)`, [id, seq, seq, text, id]);
    try {
      await q(`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ('u', 'ann', 'ann', 'x', 1)`);
      await q(`INSERT INTO channels (id, kind, name, name_key, visibility, created_at) VALUES ('c', 'channel', 'Hall', 'hall', 'public', 1)`);
      await insert('m1', 1, 'apple pie');
      await insert('m2', 2, 'banana bread');
      expect(await find('apple')).toEqual([]); // not indexed yet: the batch does it
      await indexAll();
      expect(await find('apple')).toEqual(['m1']);
      await q(`UPDATE messages SET text = 'cherry tart' WHERE id = 'm1'`); // indexed row: the trigger follows
      expect(await find('apple')).toEqual([]);
      expect(await find('cherry')).toEqual(['m1']);
      await q(`DELETE FROM messages WHERE id = 'm2'`); // the newest row: the mark comes down to m1's rowid
      expect(await find('banana')).toEqual([]);
      await insert('m3', 3, 'durian cake'); // may take m2's rowid again
      await indexAll();
      expect(await find('durian')).toEqual(['m3']);
      expect(await q(`INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)`)).toBeDefined();
    } finally {
      await ds.destroy();
      await cleanup();
    }
  });
});
