import type { MigrationInterface, QueryRunner } from 'typeorm';

// The webhook outbox (src/webhooks/webhook-outbox.ts: rows written in the transaction of the
// change they describe, deleted once delivered) and a member's mute (no notification.needed).
// Written by hand: the outbox is raw SQL on purpose (no entity), so the generator cannot see it.
export class Webhooks1795403471228 implements MigrationInterface {
  name = 'Webhooks1795403471228';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "webhook_outbox" ("id" bigserial NOT NULL, "event_id" character varying(36) NOT NULL, "type" character varying(32) NOT NULL, "ordering_key" character varying(64) NOT NULL, "body" text NOT NULL, "created_at" bigint NOT NULL, "attempts" integer NOT NULL DEFAULT 0, "next_attempt_at" bigint NOT NULL, "lease_until" bigint NOT NULL DEFAULT 0, "leased_by" character varying(32), "last_error" character varying(200), CONSTRAINT "PK_webhook_outbox" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE INDEX "idx_webhook_outbox_key" ON "webhook_outbox" ("ordering_key", "id") `);
    await queryRunner.query(`ALTER TABLE "memberships" ADD "muted_at" bigint`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "memberships" DROP COLUMN "muted_at"`);
    await queryRunner.query(`DROP INDEX "idx_webhook_outbox_key"`);
    await queryRunner.query(`DROP TABLE "webhook_outbox"`);
  }
}
