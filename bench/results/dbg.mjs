import WebSocket from 'ws';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { seedParley, startParley, makeUsers, tokenFor, createChannel } from '../lib/parley.mjs';
import { sleep } from '../lib/util.mjs';
const N = Number(process.argv[2] || 20), RATE = Number(process.argv[3] || 100), TOTAL = Number(process.argv[4] || 300);
const dir = mkdtempSync(join(tmpdir(), 'dbg-')); const dbFile = join(dir, 'db.sqlite');
const users = makeUsers('u', N);
await seedParley({ dbFile, logDir: dir, users });
const srv = await startParley({ dbFile, logDir: dir });
const channelId = await createChannel(srv, 'dbg', users);
const counts = new Array(N).fill(0); const others = {};
const socks = await Promise.all(users.map((u, i) => new Promise((res) => {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`, { headers: { Authorization: `Bearer ${tokenFor(u)}` } });
  ws.on('message', (b) => { const f = JSON.parse(b); if (f.event === 'message.new') counts[i]++; else others[f.event] = (others[f.event] || 0) + 1; if (f.event === 'session.ready') res(ws); });
  ws.on('close', (c) => console.log('closed', i, c));
})));
for (let k = 0; k < TOTAL; k++) { socks[0].send(JSON.stringify({ event: 'message.send', data: { channelId, text: 'hello ' + k, clientMsgId: 'c' + k } })); await sleep(1000 / RATE); if (k % 50 === 49) console.log(k + 1, 'sent; min/max received', Math.min(...counts), Math.max(...counts), JSON.stringify(others)); }
await sleep(1000);
console.log('final', Math.min(...counts), Math.max(...counts), JSON.stringify(others));
await srv.stop(); process.exit(0);
