import { ChildProcess, spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { freePort } from './server-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** A redis-server of the test's own on a free port, without persistence (the machine's shared one is never touched). */
export async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let failed: Error | null = null;
  child.once('error', (err) => (failed = err));
  for (let i = 0; !(await answers(port)); i++) {
    if (failed || i > 200) throw new Error(`redis-server did not start: ${failed ?? 'no answer on its port'}`);
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
