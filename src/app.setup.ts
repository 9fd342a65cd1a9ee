import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication, NestExpressBodyParserOptionsFor } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { Request } from 'express';
import helmet from 'helmet';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { verifyJsonDepth } from './common/json-depth.js';
import { createOpenApiDocument, withServer } from './common/openapi-document.js';
import { createLogger, httpLogger, PinoLoggerService } from './common/logger.js';
import { createValidationPipe } from './common/validation.js';
import type { AppConfig } from './config/app-config.js';
import { MetricsService } from './metrics/metrics.service.js';
import { ParleyWsAdapter } from './realtime/parley-ws.adapter.js';
import { SessionService } from './realtime/session.service.js';

/** The web client (clients/web, built by `npm run build` into dist/public), served at `/`. */
const WEB_ROOT = join(dirname(fileURLToPath(import.meta.url)), 'public');
/**
 * The web client's page gets a real CSP (the API's responses keep only frame-ancestors): its own
 * scripts and styles only; connections to any http(s)/ws(s) origin, because the page may talk
 * to an API on another origin (`?api=`); images from https (avatars).
 */
const WEB_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self' http: https: ws: wss:; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

/** Everything `main.ts` and the e2e tests both need, so the tests run the real app. */
export function configureApp(app: INestApplication, config: AppConfig): void {
  const logger = createLogger(config.logLevel);
  app.useLogger(new PinoLoggerService(logger));
  // Per-IP rate limits must see the client, not the load balancer in front (TRUST_PROXY).
  (app as NestExpressApplication).set('trust proxy', config.trustProxy);
  app.use(httpLogger(logger));
  // Security headers (nosniff, no framing, no referrer, no X-Powered-By). The only CSP directive
  // is frame-ancestors: a JSON API has no page to protect, and Swagger UI at /docs needs its scripts.
  app.use(helmet({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: helmet.contentSecurityPolicy.dangerouslyDisableDefaultSrc, frameAncestors: ["'none'"] } } }));
  // CORS from ALLOWED_ORIGINS (unset or `*`: any). Credentials are bearer tokens, never cookies,
  // so no `credentials`; the preflight allows the Authorization header.
  app.enableCors({
    origin: config.allowedOrigins ?? true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedHeaders: ['Retry-After'],
    maxAge: 600,
  });
  // JSON is the only body Parley reads: the app is created with `bodyParser: false`, so there is
  // no URL-encoded parser, and a cross-site HTML form cannot post to /auth/register (a form body
  // is refused by validation). Our JSON parser in place of Nest's default one (same options), with a depth check of the raw
  // bytes before JSON.parse. Nest's types reserve `verify` for its `rawBody` option, which
  // Parley does not use (test/json-depth.e2e-spec.ts fails if this check stops running).
  (app as NestExpressApplication).useBodyParser('json', { verify: verifyJsonDepth } as NestExpressBodyParserOptionsFor<'json'>);
  // Static files only where a file exists (index.html at `/`, app.js, app.css): every other path
  // falls through to the API, so nothing of it (/auth, /docs, /health, /metrics, /asyncapi.json)
  // is shadowed. No directory redirects, no dotfiles.
  if (existsSync(WEB_ROOT)) {
    (app as NestExpressApplication).useStaticAssets(WEB_ROOT, {
      index: 'index.html',
      redirect: false,
      dotfiles: 'ignore',
      setHeaders: (res, path) => {
        if (path.endsWith('.html')) {
          res.setHeader('Content-Security-Policy', WEB_CSP);
          res.setHeader('Cache-Control', 'no-cache');
        }
      },
    });
  }
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new HttpExceptionFilter(app.get(MetricsService)));
  app.useWebSocketAdapter(new ParleyWsAdapter(app, app.get(SessionService), config, app.get(MetricsService)));
  if (config.docsEnabled) {
    SwaggerModule.setup('docs', app, createOpenApiDocument(app, config), {
      jsonDocumentUrl: 'docs-json',
      patchDocumentOnRequest: (req, _res, document) => withServer(document, req as Request, config),
    });
  }
}
