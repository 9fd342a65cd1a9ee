import type { MigrationInterface, QueryRunner } from 'typeorm';

// Protocol v1.1, messages that change: a per-channel `rev` (existing messages take rev = seq, the
// order they were created in, and each channel's head_rev its head_seq), edits, deletes,
// replies, mentions (a row per mentioned user, for mentionCount; the rendered list rides on the
// message), reactions (a row per user and emoji; the rendered summary rides on the message), and
// the full-text index: an FTS5 table over messages' own text (external content, so the text is
// stored once), filled in batches by SearchIndex (MessageStore.indexPending) and kept in step with
// edits and deletes by triggers. The FTS rows are keyed by the messages' rowid, which a
// VACUUM may renumber on a table without an INTEGER PRIMARY KEY: after a VACUUM run
// `INSERT INTO messages_fts(messages_fts) VALUES('rebuild')` (docs/deployment.md says so).
export class MessagesChange1795403465739 implements MigrationInterface {
  name = 'MessagesChange1795403465739';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "channels" ADD COLUMN "head_rev" integer NOT NULL DEFAULT (0)`);
    await queryRunner.query(`UPDATE "channels" SET "head_rev" = "head_seq"`);
    await queryRunner.query(`ALTER TABLE "messages" ADD COLUMN "rev" integer NOT NULL DEFAULT (0)`);
    await queryRunner.query(`UPDATE "messages" SET "rev" = "seq"`);
    for (const col of ['"edited_at" bigint', '"deleted_at" bigint', '"reply_to_seq" integer', '"reply_to" text', '"mentions" text', '"reactions" text']) {
      await queryRunner.query(`ALTER TABLE "messages" ADD COLUMN ${col}`);
    }
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_messages_channel_rev" ON "messages" ("channel_id", "rev")`);
    await queryRunner.query(`CREATE INDEX "idx_messages_deleted" ON "messages" ("channel_id", "seq") WHERE "deleted_at" IS NOT NULL`);
    await queryRunner.query(`CREATE TABLE "message_mentions" ("channel_id" varchar(36) NOT NULL, "seq" integer NOT NULL, "user_id" varchar(36) NOT NULL, PRIMARY KEY ("channel_id", "user_id", "seq"), CONSTRAINT "fk_message_mentions_channel" FOREIGN KEY ("channel_id") REFERENCES "channels" ("id") ON DELETE CASCADE, CONSTRAINT "fk_message_mentions_user" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE)`);
    await queryRunner.query(`CREATE INDEX "idx_message_mentions_user" ON "message_mentions" ("user_id")`);
    await queryRunner.query(`CREATE TABLE "reactions" ("message_id" varchar(36) NOT NULL, "user_id" varchar(36) NOT NULL, "emoji" varchar(64) NOT NULL, "created_at" bigint NOT NULL, PRIMARY KEY ("message_id", "user_id", "emoji"), CONSTRAINT "fk_reactions_message" FOREIGN KEY ("message_id") REFERENCES "messages" ("id") ON DELETE CASCADE, CONSTRAINT "fk_reactions_user" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE)`);
    await queryRunner.query(`CREATE INDEX "idx_reactions_user" ON "reactions" ("user_id")`);
    await queryRunner.query(`CREATE VIRTUAL TABLE "messages_fts" USING fts5(text, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')`);
    // New messages are indexed in batches by SearchIndex (off the send path: one FTS insert per
    // message in every small commit cost a third of a lone sender's throughput), up to
    // `indexed_rowid`. Changes of indexed rows are kept in step here, by triggers; a row above
    // the mark is indexed later in its state of then. A delete of the newest rows lowers the mark
    // to the newest row left, so a rowid SQLite hands out again is indexed again.
    await queryRunner.query(`CREATE TABLE "messages_fts_state" ("id" integer PRIMARY KEY CHECK ("id" = 1), "indexed_rowid" integer NOT NULL)`);
    await queryRunner.query(`INSERT INTO messages_fts(rowid, text) SELECT rowid, text FROM messages`);
    await queryRunner.query(`INSERT INTO "messages_fts_state" ("id", "indexed_rowid") SELECT 1, coalesce(max(rowid), 0) FROM messages`);
    const indexed = `(SELECT indexed_rowid FROM messages_fts_state WHERE id = 1)`;
    await queryRunner.query(`CREATE TRIGGER "messages_fts_delete" AFTER DELETE ON "messages" WHEN old.rowid <= ${indexed} BEGIN
      INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
      UPDATE messages_fts_state SET indexed_rowid = (SELECT coalesce(max(rowid), 0) FROM messages) WHERE id = 1 AND indexed_rowid > (SELECT coalesce(max(rowid), 0) FROM messages);
    END`);
    await queryRunner.query(`CREATE TRIGGER "messages_fts_update" AFTER UPDATE OF "text" ON "messages" WHEN old.rowid <= ${indexed} BEGIN
      INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
      INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text);
    END`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    for (const t of ['messages_fts_update', 'messages_fts_delete']) await queryRunner.query(`DROP TRIGGER "${t}"`);
    await queryRunner.query(`DROP TABLE "messages_fts_state"`);
    await queryRunner.query(`DROP TABLE "messages_fts"`);
    await queryRunner.query(`DROP TABLE "reactions"`);
    await queryRunner.query(`DROP TABLE "message_mentions"`);
    await queryRunner.query(`DROP INDEX "idx_messages_deleted"`);
    await queryRunner.query(`DROP INDEX "uq_messages_channel_rev"`);
    for (const col of ['reactions', 'mentions', 'reply_to', 'reply_to_seq', 'deleted_at', 'edited_at', 'rev']) {
      await queryRunner.query(`ALTER TABLE "messages" DROP COLUMN "${col}"`);
    }
    await queryRunner.query(`ALTER TABLE "channels" DROP COLUMN "head_rev"`);
  }
}
