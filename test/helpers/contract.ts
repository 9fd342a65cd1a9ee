import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import * as ajvFormats from 'ajv-formats';

/**
 * The contract, checked from the outside: every HTTP response and every WebSocket frame the e2e
 * suites see is validated against the documents the server serves (/docs-json, /asyncapi.json),
 * with Ajv (not the code that wrote them). A response with an undocumented status, a body that
 * breaks its schema, or a field its schema does not list fails the test that saw it.
 *
 * Documented objects are open to new fields (clients must ignore what they do not know), but our
 * own suites are not clients of a future version: here every object schema that lists its
 * properties is closed (`additionalProperties: false`), so an undocumented field fails.
 */

// ajv-formats is CommonJS with `exports.default`; under ES modules the default import is the
// module object.
const addFormats = ajvFormats.default as unknown as (ajv: Ajv) => Ajv;

export class ContractViolation extends Error {
  override name = 'ContractViolation';
}

// Violations seen outside an awaited request (a frame that arrived while the test was doing
// something else) fail the test they happened in.
const pending: string[] = [];

export function reportViolation(problem: string): void {
  pending.push(problem);
}

function flushViolations(): void {
  if (pending.length === 0) return;
  const problems = pending.splice(0);
  throw new ContractViolation(`${problems.length} contract violation(s):\n${problems.slice(0, 10).join('\n')}`);
}
// Registered by every test file that imports the helpers (each file has its own module registry).
if (typeof afterEach === 'function') afterEach(flushViolations);
if (typeof afterAll === 'function') afterAll(flushViolations);

type Json = Record<string, unknown>;
const ROOT = 'https://contract.parley.test/';

function newAjv(): Ajv {
  // Strict: a keyword Ajv does not know in our documents is an error, except these annotations.
  // (`required` in a oneOf branch naming a property listed beside the oneOf is plain JSON Schema.)
  const ajv = new Ajv({ strict: true, allErrors: true, strictTypes: false, strictRequired: false });
  addFormats(ajv);
  ajv.addVocabulary(['example', 'xml', 'externalDocs']);
  return ajv;
}

/** A copy of a schema with its `#/components/schemas/X` refs pointing into `root`, objects closed. */
function prepare(schema: unknown, root: string, close: boolean): unknown {
  if (Array.isArray(schema)) return schema.map((s) => prepare(s, root, close));
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$ref' && typeof v === 'string') out[k] = v.replace(/^#\/components\/schemas\//, `${root}#/definitions/`);
    else if (k === 'properties' || k === 'definitions') {
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([name, s]) => [name, prepare(s, root, close)]));
    } else if (k === 'example' || k === 'examples' || k === 'enum' || k === 'const' || k === 'default') out[k] = v;
    else out[k] = prepare(v, root, close);
  }
  if (close && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const safeDecode = (s: string): string => {
  try {
    return decodeURI(s);
  } catch {
    return s; // a malformed escape: the server sees it raw too
  }
};

const describeErrors = (errors: ErrorObject[] | null | undefined): string =>
  (errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '(root)'} ${e.message}${e.keyword === 'additionalProperties' ? ` (${JSON.stringify(e.params)})` : ''}`)
    .join('; ');

const short = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
};

/** A response as seen by a client: supertest's, or fetch's. */
export interface SeenResponse {
  method: string;
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, when the body was JSON. */
  body: unknown;
  text: string;
}

interface OpenApiOperation {
  responses: Record<string, { content?: Record<string, { schema: unknown }>; headers?: Record<string, { required?: boolean; schema?: unknown }> }>;
}

/** Strips `servers` (which names the address asked at) so one compiled contract serves every app. */
const documentKey = (doc: Json): string => JSON.stringify({ ...doc, servers: undefined });

export class OpenApiContract {
  private static readonly cache = new Map<string, OpenApiContract>();
  /** Every documented `METHOD /template status` answered so far in this test file (any app). */
  static readonly seen = new Set<string>();
  private readonly ajv = newAjv();
  private readonly root = `${ROOT}openapi.json`;
  private readonly routes: { method: string; pattern: RegExp; template: string; op: OpenApiOperation }[] = [];
  private readonly compiled = new Map<string, ValidateFunction>();

  private constructor(readonly document: Json) {
    const components = (document.components as { schemas?: Json } | undefined)?.schemas ?? {};
    this.ajv.addSchema(prepare({ $id: this.root, definitions: components }, this.root, true) as Json);
    const paths = document.paths as Record<string, Record<string, OpenApiOperation>>;
    // Literal segments win over parameters (`/users/me` before `/users/{id}`).
    const templates = Object.keys(paths).sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0));
    for (const template of templates) {
      // `/?`: Express routes are not strict, so `/users/` is answered by GET /users (found by the fuzz suite: GET /users/{id} with an empty id).
      const pattern = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+')}/?$`);
      for (const [method, op] of Object.entries(paths[template])) {
        if (op && typeof op === 'object' && 'responses' in op) this.routes.push({ method, pattern, template, op });
      }
    }
  }

  /** One compiled contract per distinct document (apps differ only in `servers`, or by METRICS_TOKEN). */
  static of(document: Json): OpenApiContract {
    const key = documentKey(document);
    let contract = OpenApiContract.cache.get(key);
    if (!contract) OpenApiContract.cache.set(key, (contract = new OpenApiContract(document)));
    return contract;
  }

  /** The problem with this response, or null when the document describes it exactly. */
  check(res: SeenResponse): string | null {
    const method = res.method.toLowerCase();
    const raw = res.url.replace(/^[a-z]+:\/\/[^/]+/i, '').split('?')[0] || '/';
    const path = safeDecode(raw);
    const what = `${res.method.toUpperCase()} ${path} → ${res.status}`;
    // CORS preflights and the documents' own routes (Swagger UI, /docs-json) are not API routes.
    if (method === 'options' || path === '/docs' || path.startsWith('/docs/') || path.startsWith('/docs-')) return null;
    const route = this.routes.find((r) => r.method === method && r.pattern.test(path));
    if (!route) {
      // An unknown route or method answers the one 404 shape, unless the body parser, which runs
      // before routing, refused the body first.
      const schema = { 404: 'NotFoundError', 400: 'InvalidPayloadError', 413: 'TooLargeError', 415: 'UnsupportedBodyError' }[res.status];
      if (schema) return this.validate(`${ROOT}${res.status}`, { $ref: `${this.root}#/definitions/${schema}` }, res.body, what);
      return `${what}: no such operation in the OpenAPI document`;
    }
    const answer = route.op.responses[String(res.status)];
    if (answer) OpenApiContract.seen.add(`${method.toUpperCase()} ${route.template} ${res.status}`);
    if (!answer) return `${what}: status not documented for ${method.toUpperCase()} ${route.template} (documented: ${Object.keys(route.op.responses).join(', ')})`;
    for (const [name, header] of Object.entries(answer.headers ?? {})) {
      const value = res.headers[name.toLowerCase()];
      if (header.required && value === undefined) return `${what}: header ${name} missing`;
      if (value !== undefined && (header.schema as Json | undefined)?.type === 'integer' && !/^\d+$/.test(String(value))) {
        return `${what}: header ${name} is not an integer: ${String(value)}`;
      }
    }
    if (!answer.content) return res.text ? `${what}: documented without a body, got ${short(res.text)}` : null;
    const contentType = String(res.headers['content-type'] ?? '').split(';')[0].trim();
    const media = answer.content[contentType];
    if (!media) return `${what}: content type "${contentType}" not documented (${Object.keys(answer.content).join(', ')})`;
    const body = contentType === 'application/json' ? res.body : res.text;
    return this.validate(`${method} ${route.template} ${res.status} ${contentType}`, media.schema, body, what);
  }

  /**
   * Whether the document allows this JSON request body for the operation at `template`
   * (the fuzz suite's oracle); undefined when the operation documents no JSON body.
   */
  allowsRequestBody(method: string, template: string, body: unknown): boolean | undefined {
    const route = this.routes.find((r) => r.method === method.toLowerCase() && r.template === template);
    const schema = (route?.op as { requestBody?: { content?: Record<string, { schema: unknown }> } } | undefined)?.requestBody?.content?.[
      'application/json'
    ]?.schema;
    if (!schema) return undefined;
    const key = `request ${method} ${template}`;
    let validate = this.compiled.get(key);
    // Request bodies are as closed as the document says (it closes them: the server refuses unknown fields).
    if (!validate) this.compiled.set(key, (validate = this.ajv.compile(prepare(schema, this.root, false) as Json)));
    return validate(body);
  }

  /** The documented operations, as `{method, template}`. */
  operations(): { method: string; template: string; op: Json }[] {
    return this.routes.map(({ method, template, op }) => ({ method, template, op: op as unknown as Json }));
  }

  private validate(key: string, schema: unknown, body: unknown, what: string): string | null {
    let validate = this.compiled.get(key);
    if (!validate) this.compiled.set(key, (validate = this.ajv.compile(prepare(schema, this.root, true) as Json)));
    return validate(body) ? null : `${what}: ${describeErrors(validate.errors)} in ${short(body)}`;
  }
}

interface AsyncApiMessage {
  name: string;
  payload: Json;
}

export class AsyncApiContract {
  private static readonly cache = new Map<string, AsyncApiContract>();
  /** Every server event received so far in this test file, and `error:<code>` for each error code. */
  static readonly seen = new Set<string>();
  private readonly ajv = newAjv();
  private readonly root = `${ROOT}asyncapi.json`;
  /** event → validator of the whole frame, per direction. */
  readonly sent = new Map<string, ValidateFunction>();
  readonly received = new Map<string, ValidateFunction>();

  private constructor(readonly document: Json) {
    const components = (document.components as { schemas?: Json }).schemas ?? {};
    this.ajv.addSchema(prepare({ $id: this.root, definitions: components }, this.root, true) as Json);
    const channel = (document.channels as Record<string, { messages: Record<string, AsyncApiMessage> }>).ws;
    for (const op of Object.values(document.operations as Record<string, { action: string; messages: { $ref: string }[] }>)) {
      for (const { $ref } of op.messages) {
        const message = channel.messages[$ref.split('/').pop()!];
        // What the server sends is closed here (undocumented fields fail); what it receives is
        // as strict as the document says.
        const payload = prepare(message.payload, this.root, op.action === 'send') as Json;
        (op.action === 'send' ? this.sent : this.received).set(message.name, this.ajv.compile(payload));
      }
    }
  }

  static of(document: Json): AsyncApiContract {
    const key = documentKey(document);
    let contract = AsyncApiContract.cache.get(key);
    if (!contract) AsyncApiContract.cache.set(key, (contract = new AsyncApiContract(document)));
    return contract;
  }

  private static readonly byOrigin = new Map<string, Promise<AsyncApiContract | null>>();
  private static last: AsyncApiContract | null = null;

  /**
   * The document the server at a WebSocket URL serves, fetched once per server. A server that
   * does not answer (a test about to find it dead) is held to the last document seen, if any.
   */
  static async forWsUrl(wsUrl: string): Promise<AsyncApiContract | null> {
    const origin = new URL(wsUrl.replace(/^ws/, 'http')).origin;
    let loading = AsyncApiContract.byOrigin.get(origin);
    if (!loading) {
      loading = fetch(`${origin}/asyncapi.json`).then(
        async (res) => {
          if (!res.ok) throw new Error(`GET ${origin}/asyncapi.json answered ${res.status}`);
          // A document Ajv cannot compile throws here, and fails the test.
          return (AsyncApiContract.last = AsyncApiContract.of((await res.json()) as Json));
        },
        () => {
          AsyncApiContract.byOrigin.delete(origin); // not answering (yet, or any more)
          return AsyncApiContract.last;
        },
      );
      AsyncApiContract.byOrigin.set(origin, loading);
    }
    return loading;
  }

  /** The problem with a frame the server sent, or null. */
  checkServerFrame(frame: unknown): string | null {
    const event = (frame as { event?: unknown })?.event;
    const validate = typeof event === 'string' ? this.sent.get(event) : undefined;
    if (!validate) return `frame of an undocumented event: ${short(frame)}`;
    AsyncApiContract.seen.add(event as string);
    if (event === 'error') AsyncApiContract.seen.add(`error:${(frame as { data?: { code?: string } }).data?.code}`);
    return validate(frame) ? null : `${event} frame: ${describeErrors(validate.errors)} in ${short(frame)}`;
  }

  /** Whether the document allows this client frame (the fuzz suite's oracle). */
  allowsClientFrame(frame: { event: string; data?: unknown }): boolean {
    return this.received.get(frame.event)?.(frame) ?? false;
  }
}

/** What is wrong with a response, as the error that fails the request that got it. */
export function checkResponse(contract: OpenApiContract, res: SeenResponse): ContractViolation | null {
  try {
    const problem = contract.check(res);
    return problem ? new ContractViolation(problem) : null;
  } catch (err) {
    // A schema Ajv cannot compile is a broken document: it fails the request, never hangs it.
    return new ContractViolation(`${res.method.toUpperCase()} ${res.url}: ${(err as Error).message}`);
  }
}
