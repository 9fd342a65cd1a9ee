import type { MigrationInterface, QueryRunner } from 'typeorm';

// Written by hand (the PostgreSQL twin is the same SQL): channel administration. A topic, who created
// the channel (kept when the creator leaves: details show it), when it was archived (read-only from
// then on), and per member the head at which they hid a DM (it comes back with the next message).
// The 'admin' role needs no change: memberships.role is a varchar.
export class ChannelAdmin1795403431482 implements MigrationInterface {
  name = 'ChannelAdmin1795403431482';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "channels" ADD COLUMN "topic" varchar(250)`);
    await queryRunner.query(`ALTER TABLE "channels" ADD COLUMN "created_by" varchar(36)`);
    await queryRunner.query(`ALTER TABLE "channels" ADD COLUMN "archived_at" bigint`);
    await queryRunner.query(`ALTER TABLE "memberships" ADD COLUMN "hidden_seq" integer`);
    // Channels made before: their creator is their owner, when the owner is still in them.
    await queryRunner.query(
      `UPDATE "channels" SET "created_by" = (SELECT "user_id" FROM "memberships" WHERE "memberships"."channel_id" = "channels"."id" AND "memberships"."role" = 'owner' LIMIT 1) WHERE "kind" = 'channel'`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`UPDATE "memberships" SET "role" = 'member' WHERE "role" = 'admin'`);
    await queryRunner.query(`ALTER TABLE "memberships" DROP COLUMN "hidden_seq"`);
    await queryRunner.query(`ALTER TABLE "channels" DROP COLUMN "archived_at"`);
    await queryRunner.query(`ALTER TABLE "channels" DROP COLUMN "created_by"`);
    await queryRunner.query(`ALTER TABLE "channels" DROP COLUMN "topic"`);
  }
}
