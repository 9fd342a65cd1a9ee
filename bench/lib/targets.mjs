// The three servers, started the same way and driven by the same client.
import { join } from 'node:path';
import { BENCH_DIR, startServer, freePort } from './servers.mjs';
import { startParley, JWT_SECRET } from './parley.mjs';

export const LABEL = { parley: 'Parley', ws: 'ws-ref', sio: 'socket.io-ref' };

export async function startTarget(ctx, kind) {
  let srv;
  if (kind === 'parley') {
    srv = await startParley({ dbFile: ctx.dbFile, logDir: ctx.logDir });
  } else {
    const script = join(BENCH_DIR, 'servers', kind === 'ws' ? 'ws-ref.mjs' : 'sio-ref.mjs');
    srv = await startServer({ name: `${kind}-ref`, script, env: { JWT_SECRET, SEND_BUFFER_CAP_BYTES: String(256 * 1024 * 1024) }, port: await freePort(), logDir: ctx.logDir });
  }
  return { kind, label: LABEL[kind], srv, base: `ws://127.0.0.1:${srv.port}`, framing: kind === 'sio' ? 'sio' : 'json' };
}
