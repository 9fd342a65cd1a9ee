import type { MigrationInterface, QueryRunner } from 'typeorm';

// Written by hand (see the SQLite twin): acceptance of memberships, blocks between users, and
// channel names unique among public channels only. Constraint names are the ones TypeORM derives
// from the entities, so `npm run migration:generate` finds nothing left to do.
export class Privacy1795396058890 implements MigrationInterface {
  name = 'Privacy1795396058890';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // NULL: a conversation someone else put this user in, not accepted yet. Every membership that
    // exists already was made before acceptance existed: accepted, as of when it was made.
    await queryRunner.query(`ALTER TABLE "memberships" ADD "accepted_at" bigint`);
    await queryRunner.query(`UPDATE "memberships" SET "accepted_at" = "joined_at"`);
    await queryRunner.query(`CREATE TABLE "blocks" ("blocker_id" character varying(36) NOT NULL, "blocked_id" character varying(36) NOT NULL, "created_at" bigint NOT NULL, CONSTRAINT "PK_806f6a5d38d031cdd868fd5e37e" PRIMARY KEY ("blocker_id", "blocked_id"))`);
    await queryRunner.query(`CREATE INDEX "idx_blocks_blocked" ON "blocks" ("blocked_id") `);
    await queryRunner.query(`ALTER TABLE "blocks" ADD CONSTRAINT "FK_74f530c6fbffc357047b263818d" FOREIGN KEY ("blocker_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "blocks" ADD CONSTRAINT "FK_8aa6c887bed61ad10829450f2f0" FOREIGN KEY ("blocked_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    // name_key (UNIQUE) now holds public channels' names only: a private channel's name must not
    // make another user's create or join fail, which would tell them it exists.
    await queryRunner.query(`UPDATE "channels" SET "name_key" = NULL WHERE "visibility" = 'private'`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Fails if private channels took a name twice since: then there is no going back without renaming.
    await queryRunner.query(`UPDATE "channels" SET "name_key" = LOWER("name") WHERE "kind" = 'channel' AND "visibility" = 'private'`);
    await queryRunner.query(`ALTER TABLE "blocks" DROP CONSTRAINT "FK_8aa6c887bed61ad10829450f2f0"`);
    await queryRunner.query(`ALTER TABLE "blocks" DROP CONSTRAINT "FK_74f530c6fbffc357047b263818d"`);
    await queryRunner.query(`DROP INDEX "idx_blocks_blocked"`);
    await queryRunner.query(`DROP TABLE "blocks"`);
    await queryRunner.query(`ALTER TABLE "memberships" DROP COLUMN "accepted_at"`);
  }
}
