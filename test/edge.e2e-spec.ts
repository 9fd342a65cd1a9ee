import { api, ServerProcess } from './helpers/server-process.js';
import { freshDatabaseUrl, registerUser, startApp, TestApp } from './helpers/test-app.js';

/** What a browser, a proxy or an operator meets at the edge: CORS, headers, docs, metrics, the listen address. */
describe('the HTTP edge', () => {
  describe('with ALLOWED_ORIGINS set', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite', { ALLOWED_ORIGINS: 'https://app.example' });
    });
    afterAll(() => t.close());

    it('answers a browser preflight from an allowed origin, allowing the Authorization header', async () => {
      const res = await t
        .http()
        .options('/conversations')
        .set('Origin', 'https://app.example')
        .set('Access-Control-Request-Method', 'GET')
        .set('Access-Control-Request-Headers', 'authorization');
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(res.headers['access-control-allow-headers']?.toLowerCase()).toContain('authorization');
      expect(res.headers['access-control-allow-credentials']).toBeUndefined(); // bearer tokens, never cookies
    });

    it('lets an allowed origin read answers (login, then its conversations)', async () => {
      const u = await registerUser(t);
      const res = await t.http().get('/conversations').set(u.auth).set('Origin', 'https://app.example').expect(200);
      expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
    });

    it('gives no CORS grant to another origin', async () => {
      const res = await t.http().options('/auth/login').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'POST');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  describe('with the defaults', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite');
    });
    afterAll(() => t.close());

    it('allows any origin when ALLOWED_ORIGINS is unset', async () => {
      const res = await t.http().options('/auth/login').set('Origin', 'https://anywhere.example').set('Access-Control-Request-Method', 'POST');
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBeDefined();
    });

    it('sends security headers and no X-Powered-By', async () => {
      const res = await t.http().get('/health').expect(200);
      expect(res.headers['x-powered-by']).toBeUndefined();
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    });
  });

  describe('in production', () => {
    let t: TestApp;
    const token = 'metrics-token-0123456789';
    beforeAll(async () => {
      t = await startApp('sqlite', { NODE_ENV: 'production', METRICS_TOKEN: token });
    });
    afterAll(() => t.close());

    it('serves no /docs unless DOCS_ENABLED says so', async () => {
      await t.http().get('/docs-json').expect(404);
    });

    it('keeps /metrics for the holder of METRICS_TOKEN', async () => {
      expect((await t.http().get('/metrics').expect(401)).body.code).toBe('unauthorized');
      await t.http().get('/metrics').set('Authorization', 'Bearer not-the-token-at-all').expect(401);
      const res = await t.http().get('/metrics').set('Authorization', `Bearer ${token}`).expect(200);
      expect(res.text).toContain('parley_ws_connections');
    });
  });

  it('listens on HOST and says where at start-up', async () => {
    const db = freshDatabaseUrl('sqlite');
    const server = await ServerProcess.start({ DATABASE_URL: db.url, HOST: '127.0.0.1', LOG_LEVEL: 'info', PASSWORD_HASH_MEMORY_KIB: '1024' });
    try {
      expect(server.output).toContain(`listening on http://127.0.0.1:${server.port}`);
      expect((await api(server.baseUrl, 'GET', '/health')).status).toBe(200);
    } finally {
      await server.kill('SIGTERM');
      await db.cleanup();
    }
  });
});
