import { Writable } from 'node:stream';
import { pino } from 'pino';
import { REDACTED_PATHS, redactUrl } from './logger.js';

describe('logging', () => {
  it('strips tokens from logged URLs', () => {
    expect(redactUrl('/ws?token=eyJhbGci.abc.def&x=1')).toBe('/ws?token=[redacted]&x=1');
    expect(redactUrl('/ws?a=1&TOKEN=secret')).toBe('/ws?a=1&TOKEN=[redacted]');
    expect(redactUrl('/channels/1/messages?limit=5')).toBe('/channels/1/messages?limit=5');
  });

  it('redacts the Authorization header', () => {
    let out = '';
    const sink = new Writable({ write: (chunk, _enc, done) => ((out += chunk), done()) });
    const logger = pino({ redact: REDACTED_PATHS }, sink);
    logger.info({ req: { headers: { authorization: 'Bearer eyJsecret', cookie: 'c=1' } } }, 'request');
    expect(out).not.toContain('eyJsecret');
    expect(out).toContain('[Redacted]');
  });
});
