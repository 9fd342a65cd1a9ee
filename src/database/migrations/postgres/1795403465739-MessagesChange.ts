import type { MigrationInterface, QueryRunner } from 'typeorm';

// Protocol v1.1, messages that change (see the SQLite twin for the model). Full-text search: a
// stored generated tsvector over the text with the `simple` configuration (no stemming: chats
// mix languages; an edit re-indexes by itself, a delete empties the text and so the vector) and a
// GIN index (fastupdate keeps inserts cheap: new entries go to a pending list first).
export class MessagesChange1795403465739 implements MigrationInterface {
  name = 'MessagesChange1795403465739';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "channels" ADD "head_rev" integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`UPDATE "channels" SET "head_rev" = "head_seq"`);
    await queryRunner.query(`ALTER TABLE "messages" ADD "rev" integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`UPDATE "messages" SET "rev" = "seq"`);
    await queryRunner.query(`ALTER TABLE "messages" ADD "edited_at" bigint, ADD "deleted_at" bigint, ADD "reply_to_seq" integer, ADD "reply_to" text, ADD "mentions" text, ADD "reactions" text`);
    await queryRunner.query(`ALTER TABLE "messages" ADD "search" tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, "text")) STORED`);
    await queryRunner.query(`CREATE INDEX "idx_messages_search" ON "messages" USING GIN ("search")`);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_messages_channel_rev" ON "messages" ("channel_id", "rev")`);
    await queryRunner.query(`CREATE INDEX "idx_messages_deleted" ON "messages" ("channel_id", "seq") WHERE "deleted_at" IS NOT NULL`);
    await queryRunner.query(`CREATE TABLE "message_mentions" ("channel_id" character varying(36) NOT NULL, "seq" integer NOT NULL, "user_id" character varying(36) NOT NULL, CONSTRAINT "pk_message_mentions" PRIMARY KEY ("channel_id", "user_id", "seq"), CONSTRAINT "fk_message_mentions_channel" FOREIGN KEY ("channel_id") REFERENCES "channels"("id") ON DELETE CASCADE, CONSTRAINT "fk_message_mentions_user" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE)`);
    await queryRunner.query(`CREATE INDEX "idx_message_mentions_user" ON "message_mentions" ("user_id")`);
    await queryRunner.query(`CREATE TABLE "reactions" ("message_id" character varying(36) NOT NULL, "user_id" character varying(36) NOT NULL, "emoji" character varying(64) NOT NULL, "created_at" bigint NOT NULL, CONSTRAINT "pk_reactions" PRIMARY KEY ("message_id", "user_id", "emoji"), CONSTRAINT "fk_reactions_message" FOREIGN KEY ("message_id") REFERENCES "messages"("id") ON DELETE CASCADE, CONSTRAINT "fk_reactions_user" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE)`);
    await queryRunner.query(`CREATE INDEX "idx_reactions_user" ON "reactions" ("user_id")`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "reactions"`);
    await queryRunner.query(`DROP TABLE "message_mentions"`);
    await queryRunner.query(`DROP INDEX "idx_messages_deleted"`);
    await queryRunner.query(`DROP INDEX "uq_messages_channel_rev"`);
    await queryRunner.query(`DROP INDEX "idx_messages_search"`);
    await queryRunner.query(`ALTER TABLE "messages" DROP COLUMN "search", DROP COLUMN "reactions", DROP COLUMN "mentions", DROP COLUMN "reply_to", DROP COLUMN "reply_to_seq", DROP COLUMN "deleted_at", DROP COLUMN "edited_at", DROP COLUMN "rev"`);
    await queryRunner.query(`ALTER TABLE "channels" DROP COLUMN "head_rev"`);
  }
}
