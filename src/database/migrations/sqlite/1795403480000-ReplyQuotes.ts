import type { MigrationInterface, QueryRunner } from 'typeorm';

// Deleting a message empties its quote in the replies that answer it (message-batch.ts,
// applyChange): they are found by this index. Partial: only replies have a reply_to_seq, so
// ordinary sends write no entry in it.
export class ReplyQuotes1795403480000 implements MigrationInterface {
  name = 'ReplyQuotes1795403480000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX "idx_messages_reply_to" ON "messages" ("channel_id", "reply_to_seq") WHERE "reply_to_seq" IS NOT NULL`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "idx_messages_reply_to"`);
  }
}
