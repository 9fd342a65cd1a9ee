import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication, NestExpressBodyParserOptionsFor } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { verifyJsonDepth } from './common/json-depth.js';
import { createLogger, httpLogger, PinoLoggerService } from './common/logger.js';
import { createValidationPipe } from './common/validation.js';
import type { AppConfig } from './config/app-config.js';
import { MetricsService } from './metrics/metrics.service.js';
import { ParleyWsAdapter } from './realtime/parley-ws.adapter.js';
import { SessionService } from './realtime/session.service.js';

/** Everything `main.ts` and the e2e tests both need, so the tests run the real app. */
export function configureApp(app: INestApplication, config: AppConfig): void {
  const logger = createLogger(config.logLevel);
  app.useLogger(new PinoLoggerService(logger));
  // Per-IP rate limits must see the client, not the load balancer in front (TRUST_PROXY).
  (app as NestExpressApplication).set('trust proxy', config.trustProxy);
  app.use(httpLogger(logger));
  // Our JSON parser in place of Nest's default one (same options), with a depth check of the raw
  // bytes before JSON.parse. Nest's types reserve `verify` for its `rawBody` option, which
  // Parley does not use (test/json-depth.e2e-spec.ts fails if this check stops running).
  (app as NestExpressApplication).useBodyParser('json', { verify: verifyJsonDepth } as NestExpressBodyParserOptionsFor<'json'>);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new HttpExceptionFilter(app.get(MetricsService)));
  app.useWebSocketAdapter(new ParleyWsAdapter(app, app.get(SessionService), config, app.get(MetricsService)));
  if (config.docsEnabled) {
    const document = SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('Parley HTTP API')
        .setDescription(
          'History, channels and sending over HTTP. The real-time half is the WebSocket protocol at `/ws`, ' +
            'described in docs/protocol.md and the AsyncAPI document at `/asyncapi.json`. Errors are ' +
            '`{statusCode, code, message, details?}` with stable lower-case codes.',
        )
        .setVersion('1')
        .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
        .build(),
    );
    SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  }
}
