import { ConfigError, loadConfig } from '../config/app-config.js';
import { addressKey, HttpRateLimiter } from './http-rate-limiter.js';

describe('HTTP rate limit settings', () => {
  const base = { DATABASE_URL: 'sqlite::memory:', JWT_SECRET: 'x'.repeat(32) };

  it('has the documented defaults, and reads <requests>/<window> or off', () => {
    expect(loadConfig(base)).toMatchObject({
      httpRateLimits: {
        login: { limit: 10, windowSeconds: 60 }, loginIp: { limit: 30, windowSeconds: 60 }, loginUser: { limit: 100, windowSeconds: 3600 },
        register: { limit: 20, windowSeconds: 3600 }, write: { limit: 300, windowSeconds: 60 }, read: { limit: 1200, windowSeconds: 60 },
      },
      trustProxy: false,
    });
    const c = loadConfig({ ...base, HTTP_RATE_LIMIT_WRITE: '5/90', HTTP_RATE_LIMIT_READ: 'off', TRUST_PROXY: 'loopback, 10.0.0.0/8, fd00::/8' });
    expect(c.httpRateLimits).toMatchObject({ write: { limit: 5, windowSeconds: 90 }, read: null });
    expect(c.trustProxy).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8']);
    expect(loadConfig({ ...base, TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ ...base, HTTP_RATE_LIMIT: 'false' }).httpRateLimits).toBeNull();
  });

  it.each([
    ['HTTP_RATE_LIMIT', 'maybe'], ['HTTP_RATE_LIMIT_LOGIN', '10'], ['HTTP_RATE_LIMIT_LOGIN', '0/1m'], ['HTTP_RATE_LIMIT_WRITE', '5/500ms'],
    ['HTTP_RATE_LIMIT_READ', 'none'], ['TRUST_PROXY', 'proxy.example'], ['TRUST_PROXY', '10.0.0.0/40'], ['TRUST_PROXY', '999.1.1.1'],
  ])('stops the boot on a bad %s (%s), naming it', (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(new RegExp(name));
  });
});

describe('addressKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::ffff', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['unknown', 'unknown'],
  ])('counts %s as %s', (ip, key) => {
    expect(addressKey(ip)).toBe(key);
  });
});

describe('HttpRateLimiter (in memory)', () => {
  const limiter = (env: Record<string, string>) =>
    new HttpRateLimiter(loadConfig({ DATABASE_URL: 'sqlite::memory:', JWT_SECRET: 'x'.repeat(32), HTTP_RATE_LIMIT: 'true', ...env }), null);
  const req = (ip: string, username?: unknown, user?: string) => ({ ip, body: { username }, ...(user ? { user: { id: user } } : {}) });

  it('counts a login against the address+username, the address and the username, and refuses past any', async () => {
    const l = limiter({ HTTP_RATE_LIMIT_LOGIN: '2/1m', HTTP_RATE_LIMIT_LOGIN_IP: '3/1m', HTTP_RATE_LIMIT_LOGIN_USER: '4/1h' });
    await l.check('login', req('10.0.0.1', 'Alice'));
    await l.check('login', req('10.0.0.1', 'alice'));
    await expect(l.check('login', req('10.0.0.1', 'ALICE'))).rejects.toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^too many login attempts; retry in 60 s$/) });
    // The address has had 3: a fourth name from it is refused by the per-address limit.
    await expect(l.check('login', req('10.0.0.1', 'bob'))).rejects.toMatchObject({ message: expect.stringMatching(/from this address/) });
    // Alice from elsewhere: her 4th attempt is her last this hour.
    await l.check('login', req('10.0.0.2', 'alice'));
    await expect(l.check('login', req('10.0.0.3', 'alice'))).rejects.toMatchObject({ message: expect.stringMatching(/for this account; retry in 3600 s/) });
  });

  it('gives each user one write budget and one read budget', async () => {
    const l = limiter({ HTTP_RATE_LIMIT_WRITE: '2/10s', HTTP_RATE_LIMIT_READ: '1/10s' });
    await l.check('write', req('10.0.0.1', undefined, 'u1'));
    await l.check('write', req('10.0.0.2', undefined, 'u1'));
    const refused = await l.check('write', req('10.0.0.1', undefined, 'u1')).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) });
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(9000);
    await l.check('write', req('10.0.0.1', undefined, 'u2'));
    await l.check('read', req('10.0.0.1', undefined, 'u1'));
    await expect(l.check('read', req('10.0.0.1', undefined, 'u1'))).rejects.toMatchObject({ code: 'rate_limited' });
  });

  it('limits nothing when HTTP_RATE_LIMIT is false, or a limit is off', async () => {
    const off = limiter({ HTTP_RATE_LIMIT: 'false', HTTP_RATE_LIMIT_REGISTER: '1/1h' });
    const readOff = limiter({ HTTP_RATE_LIMIT_READ: 'off' });
    for (let i = 0; i < 5; i++) {
      await off.check('register', req('10.0.0.1'));
      await readOff.check('read', req('10.0.0.1', undefined, 'u1'));
    }
  });
});
