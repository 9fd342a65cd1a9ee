import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import type { Request } from 'express';
import type { AppConfig } from '../config/app-config.js';
import { ERROR_RESPONSE_TYPES, HTTP_ERRORS, type HttpErrorStatus } from './error-response.dto.js';
import { MAX_JSON_DEPTH } from './json-depth.js';
import { httpUrl, publicOrigin } from './public-origin.js';

type Operation = {
  security?: Record<string, string[]>[];
  requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> };
  responses: Record<string, unknown>;
};

/**
 * What every route can answer because of the JSON body parser in front of all of them
 * (app.setup.ts), whatever the route reads: documented here, where the rule lives, not on each handler.
 */
const BODY_ERRORS: [HttpErrorStatus, string][] = [
  [400, `a body that is not JSON or nests deeper than ${MAX_JSON_DEPTH} levels (any route reads a JSON body it is sent)`],
  [413, 'a body over 100 kB'],
  [415, 'a body in a charset other than UTF-8/16 or a content encoding other than gzip/deflate/br'],
];

/**
 * The OpenAPI document, built from the controllers' decorators plus the rules that belong to no
 * one controller:
 *  - a route without `@Authenticated()` (no bearer security) is public: `security: []`;
 *  - /metrics asks for METRICS_TOKEN only when it is set;
 *  - every route may answer the body parser's 400, 413 and 415;
 *  - request bodies are closed (`additionalProperties: false`): the one ValidationPipe refuses
 *    unknown fields.
 * `servers` is added per request (withServer).
 */
export function createOpenApiDocument(app: INestApplication, config: AppConfig): OpenAPIObject {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Parley HTTP API')
      .setDescription(
        'History, channels and sending over HTTP. The real-time half is the WebSocket protocol at `/ws`, ' +
          'described in docs/protocol.md and the AsyncAPI document at `/asyncapi.json`. Errors are ' +
          '`{statusCode, code, message, details?, retryAfterMs?}` with stable lower-case codes, one per status. ' +
          'Request bodies are JSON; strings with control characters (other than newline and tab) or lone surrogates, ' +
          'and `__proto__` or `constructor` keys, are refused with 400 `invalid_payload`. A request line and headers over 16 KB are ' +
          "refused by Node's HTTP server itself with a bodiless 431.",
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'an `accessToken` from register, login or refresh, one minted by the server API, or a token the product signed (RS256/ES256, when AUTH_JWKS_URL or AUTH_PUBLIC_KEY is set)' })
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' }, 'metrics')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'Authorization', description: 'the server API (`/admin`): `Authorization: ApiKey <key>` with one of PARLEY_API_KEYS' }, 'apiKey')
      .build(),
    { extraModels: Object.values(ERROR_RESPONSE_TYPES) },
  );
  const bodies = new Set<string>();
  for (const item of Object.values(document.paths)) {
    for (const op of Object.values(item) as Operation[]) {
      if (typeof op !== 'object' || !op.responses) continue;
      if (op.security?.some((s) => 'metrics' in s) && !config.metricsToken) {
        op.security = [];
        delete op.responses['401'];
      }
      op.security ??= [];
      for (const [status, why] of BODY_ERRORS) {
        op.responses[status] ??= {
          description: `\`${HTTP_ERRORS[status].code}\`: ${why}`,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${HTTP_ERRORS[status].schema}` } } },
        };
      }
      const ref = op.requestBody?.content?.['application/json']?.schema?.$ref;
      if (ref) bodies.add(ref.split('/').pop()!);
    }
  }
  const schemas = document.components?.schemas ?? {};
  for (const name of bodies) Object.assign(schemas[name], { additionalProperties: false });
  return document;
}

/** The document as served to this request: `servers` names the address clients use. */
export function withServer(document: OpenAPIObject, req: Request, config: AppConfig): OpenAPIObject {
  const origin = publicOrigin(req, config.publicUrl);
  return {
    ...document,
    servers: [
      origin
        ? { url: httpUrl(origin), description: config.publicUrl ? 'PUBLIC_URL' : 'the address this document was asked at' }
        : { url: '/', description: 'the address this document was served from' },
    ],
  };
}
