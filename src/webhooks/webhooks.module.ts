import { Global, Module } from '@nestjs/common';
import { WebhookDelivery } from './webhook-delivery.service.js';
import { WebhookOutbox } from './webhook-outbox.js';

/**
 * Webhooks (WEBHOOK_URL): the outbox every write path appends to inside its transaction, and the
 * worker that delivers it. Global, so any module's service can take WebhookOutbox.
 */
@Global()
@Module({
  providers: [WebhookOutbox, WebhookDelivery],
  exports: [WebhookOutbox, WebhookDelivery],
})
export class WebhooksModule {}
