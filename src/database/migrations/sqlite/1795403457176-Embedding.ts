import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SYSTEM_USER_ID } from '../../../users/system-user.js';

// Embedding: profiles (display name, avatar, metadata), the product's external id, deactivation,
// the reserved system user that system messages are stored under (so the messages' foreign key
// and the (sender_id, client_msg_id) idempotency key keep working), and the audit log.
export class Embedding1795403457176 implements MigrationInterface {
  name = 'Embedding1795403457176';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "users" ADD COLUMN "display_name" varchar(64)`);
    await queryRunner.query(`ALTER TABLE "users" ADD COLUMN "avatar_url" varchar(2048)`);
    await queryRunner.query(`ALTER TABLE "users" ADD COLUMN "metadata" text`);
    await queryRunner.query(`ALTER TABLE "users" ADD COLUMN "external_id" varchar(128)`);
    await queryRunner.query(`ALTER TABLE "users" ADD COLUMN "deactivated_at" bigint`);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_users_external_id" ON "users" ("external_id") `);
    // No password (argon2 never verifies '!'), deactivated: nobody logs in as it, and its name is taken.
    await queryRunner.query(
      `INSERT INTO "users" ("id", "username", "username_key", "password_hash", "created_at", "deactivated_at") VALUES ('${SYSTEM_USER_ID}', 'system', 'system', '!', 0, 0)`,
    );
    await queryRunner.query(`CREATE TABLE "audit_log" ("id" varchar(36) PRIMARY KEY NOT NULL, "at" bigint NOT NULL, "actor" varchar(128) NOT NULL, "action" varchar(64) NOT NULL, "target" varchar(256), "status" integer, "details" text)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "audit_log"`);
    await queryRunner.query(`DELETE FROM "users" WHERE "id" = '${SYSTEM_USER_ID}'`);
    await queryRunner.query(`DROP INDEX "uq_users_external_id"`);
    for (const column of ['deactivated_at', 'external_id', 'metadata', 'avatar_url', 'display_name']) {
      await queryRunner.query(`ALTER TABLE "users" DROP COLUMN "${column}"`);
    }
  }
}
