import { createChannel, registerUser, startApp, TestApp } from './helpers/test-app.js';
import { MetricsService } from '../src/metrics/metrics.service.js';
import { ConnectionRegistry } from '../src/realtime/connection-registry.js';
import { CLOSE, CLOSE_GRACE_MS } from '../src/realtime/connection.js';
import { HandshakeRefused, TestClient } from './helpers/ws-client.js';

/** Gateway limits; they do not depend on the database, so they run on SQLite only. */
describe('WebSocket limits', () => {
  describe('origin check', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite', { ALLOWED_ORIGINS: 'https://app.example, https://admin.example' });
    });
    afterAll(() => t.close());

    it('refuses an Origin outside ALLOWED_ORIGINS with HTTP 403 and accepts a listed one', async () => {
      const u = await registerUser(t);
      await expect(TestClient.open(t.wsUrl, u.token, { origin: 'https://evil.example' })).rejects.toEqual(new HandshakeRefused(403));
      const { client } = await TestClient.connect(t.wsUrl, u.token, { origin: 'https://admin.example' });
      await client.close();
    });

    it('accepts a client that sends no Origin (a native app or a server is not a browser)', async () => {
      const u = await registerUser(t);
      const { client } = await TestClient.connect(t.wsUrl, u.token);
      await client.close();
    });
  });

  describe('connection quotas', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite', { QUOTA_CONNECTIONS_PER_USER: '2', QUOTA_CONNECTIONS_PER_IP: '3' });
    });
    afterAll(() => t.close());

    it('refuses a user\'s connection past QUOTA_CONNECTIONS_PER_USER with HTTP 429, and takes one again once another closes', async () => {
      const u = await registerUser(t);
      const first = (await TestClient.connect(t.wsUrl, u.token)).client;
      const second = (await TestClient.connect(t.wsUrl, u.token)).client;
      await expect(TestClient.open(t.wsUrl, u.token)).rejects.toEqual(new HandshakeRefused(429));
      await first.close();
      await new Promise((r) => setTimeout(r, 50));
      const third = (await TestClient.connect(t.wsUrl, u.token)).client;
      await Promise.all([second.close(), third.close()]);
    });

    // A socket the server has closed can take up to 30 s to finish (a client reading slowly, or
    // gone without a FIN): its place is given back at the server's close, not at the socket's.
    it('takes a connection again as soon as the server closes one, before its socket has finished', async () => {
      const u = await registerUser(t);
      const gauge = async () => (await t.app.get(MetricsService).connections.get()).values[0].value;
      const before = await gauge();
      const first = (await TestClient.connect(t.wsUrl, u.token)).client;
      const second = (await TestClient.connect(t.wsUrl, u.token)).client;
      const tcp = (first.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      tcp.pause(); // it will not answer the close for now
      const registry = t.app.get(ConnectionRegistry);
      const [conn] = registry.of(u.id)!; // the first to open
      conn.close(CLOSE.SLOW_CONSUMER, 'slow consumer');
      expect(conn.socket.readyState).toBe(2); // CLOSING: the client has not answered
      expect([registry.count(u.id), await gauge()]).toEqual([1, before + 1]);
      const third = (await TestClient.connect(t.wsUrl, u.token)).client;
      tcp.resume();
      expect(await first.waitClosed(5000)).toEqual({ code: 4008, reason: 'slow consumer' });
      await new Promise((r) => setTimeout(r, 50));
      // The socket's own close gave nothing back a second time.
      expect([registry.count(u.id), await gauge()]).toEqual([2, before + 2]);
      await Promise.all([second.close(), third.close()]);
    });

    it('refuses connections from one address past QUOTA_CONNECTIONS_PER_IP, whoever the users', async () => {
      const users = await Promise.all([registerUser(t), registerUser(t)]);
      const open = [
        (await TestClient.connect(t.wsUrl, users[0].token)).client,
        (await TestClient.connect(t.wsUrl, users[0].token)).client,
        (await TestClient.connect(t.wsUrl, users[1].token)).client,
      ];
      await expect(TestClient.open(t.wsUrl, users[1].token)).rejects.toEqual(new HandshakeRefused(429));
      await Promise.all(open.map((c) => c.close()));
    });
  });

  describe('rate limit, frame size, heartbeat', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite', {
        RATE_LIMIT_PER_SEC: '5',
        RATE_LIMIT_BURST: '5',
        MAX_FRAME_BYTES: '2048',
        HEARTBEAT_INTERVAL_MS: '200',
      });
    });
    afterAll(() => t.close());

    it('answers frames over the rate with rate_limited and retryAfterMs, and keeps the connection', async () => {
      const u = await registerUser(t);
      const { client } = await TestClient.connect(t.wsUrl, u.token);
      for (let i = 0; i < 8; i++) client.send('ping', { ref: `p${i}` });
      const pongs = [];
      for (let i = 0; i < 5; i++) pongs.push(await client.next('pong'));
      const limited = await client.next('error');
      expect(limited).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number), ref: expect.stringMatching(/^p[5-7]$/) });
      expect(limited.retryAfterMs).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, limited.retryAfterMs + 50));
      client.send('ping', { ref: 'later' });
      expect(await client.next('pong', (d) => d.ref === 'later')).toBeDefined();
      await client.close();
    });

    it('closes a connection that keeps hammering past the limit with 1008', async () => {
      const u = await registerUser(t);
      const { client } = await TestClient.connect(t.wsUrl, u.token);
      for (let i = 0; i < 200; i++) client.send('ping', {});
      expect((await client.waitClosed()).code).toBe(1008);
      const metrics = (await t.http().get('/metrics')).text;
      expect(metrics).toMatch(/parley_ws_closes_total\{reason="abuse"\} [1-9]/);
      expect(metrics).toMatch(/parley_errors_total\{code="rate_limited",transport="ws"\} [1-9]/);
    });

    it('closes a frame larger than MAX_FRAME_BYTES with 1009', async () => {
      const u = await registerUser(t);
      const { client } = await TestClient.connect(t.wsUrl, u.token);
      client.send('ping', { ref: 'x'.repeat(4096) });
      expect((await client.waitClosed()).code).toBe(1009);
    });

    it('terminates a socket that stops answering pings', async () => {
      const u = await registerUser(t);
      const { client } = await TestClient.connect(t.wsUrl, u.token, { autoPong: false });
      expect((await client.waitClosed(3000)).code).toBe(1006);
    });

    it('keeps a socket that answers pings', async () => {
      const u = await registerUser(t);
      const { client } = await TestClient.connect(t.wsUrl, u.token);
      await new Promise((r) => setTimeout(r, 700));
      expect(client.closed).toBeNull();
      await client.close();
    });
  });

  describe('token expiry', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite', { JWT_TTL: '1s', HEARTBEAT_INTERVAL_MS: '200' });
    });
    afterAll(() => t.close());

    it('closes a session with 1008 when its token expires', async () => {
      const u = await registerUser(t);
      const { client } = await TestClient.connect(t.wsUrl, u.token);
      const closed = await client.waitClosed(5000);
      expect(closed).toEqual({ code: 1008, reason: 'token expired' });
    });
  });

  describe('presence in large channels', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite', { PRESENCE_MAX_CHANNEL_MEMBERS: '2' });
    });
    afterAll(() => t.close());

    it('is not carried through channels over PRESENCE_MAX_CHANNEL_MEMBERS, but still through DMs', async () => {
      const [a, b, c] = await Promise.all([registerUser(t, 'a'), registerUser(t, 'b'), registerUser(t, 'c')]);
      const channelId = await createChannel(t, a, [b, c]);
      // Everyone accepts: only the channel's size keeps presence out of it.
      for (const u of [b, c]) await t.http().post(`/channels/${channelId}/accept`).set(u.auth).expect(200);
      const { client: watcher } = await TestClient.connect(t.wsUrl, a.token);
      const { client: cc } = await TestClient.connect(t.wsUrl, c.token);
      await watcher.expectNone('presence.update', 300);
      const dm = await t.http().post('/dms').set(a.auth).send({ username: b.username }).expect(200);
      await t.http().post(`/channels/${dm.body.channelId}/accept`).set(b.auth).expect(200);
      const { client: bc } = await TestClient.connect(t.wsUrl, b.token);
      expect(await watcher.next('presence.update')).toMatchObject({ user: { id: b.id }, status: 'online' });
      await Promise.all([watcher.close(), cc.close(), bc.close()]);
    });
  });

  describe('slow consumer', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite', { SEND_BUFFER_CAP_BYTES: '65536' });
    });
    afterAll(() => t.close());

    it('closes a slow consumer with 4008 while the others keep receiving', async () => {
      const [alice, bob, slow] = await Promise.all([registerUser(t, 'alice'), registerUser(t, 'bob'), registerUser(t, 'slow')]);
      const channelId = await createChannel(t, alice, [bob, slow]);
      const { client: stuck } = await TestClient.connect(t.wsUrl, slow.token);
      const { client: b } = await TestClient.connect(t.wsUrl, bob.token);
      // The slow client stops reading: its kernel buffers fill, then the server's send buffer.
      const tcp = (stuck.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      tcp.pause();
      // It reads again as soon as the server gives up on it, watched in process rather than after
      // a batch's round trips: a commit slowed by a busy disk must not be taken for a reader that
      // stopped (the server cuts a peer that reads nothing for CLOSE_GRACE_MS).
      const closes = t.app.get(MetricsService).closes;
      let cut = false;
      const watch = setInterval(() => {
        void closes.get().then(({ values }) => {
          if (!cut && values.some((v) => v.labels.reason === 'slow_consumer' && v.value > 0)) {
            cut = true;
            tcp.resume();
          }
        });
      }, 10);
      const text = 'x'.repeat(3900);
      let sent = 0;
      try {
        while (!cut && stuck.closed === null && sent < 3000) {
          const batch = Array.from({ length: 25 }, () =>
            t.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text, clientMsgId: `slow-${sent++}` }).expect(201),
          );
          await Promise.all(batch);
        }
      } finally {
        clearInterval(watch);
      }
      expect(cut).toBe(true);
      expect((await stuck.waitClosed(10000)).code).toBe(4008);
      // Bob got every message, in order.
      await b.next('message.new', (d) => d.message.seq === sent, 10000);
      const seqs = b.log.filter((f) => f.event === 'message.new').map((f) => f.data.message.seq);
      expect(seqs).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
      await b.close();
    });
  });

  describe('a server-initiated close to a peer that is not reading', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp('sqlite');
    });
    afterAll(() => t.close());

    // The close frame is in the kernel's buffers, behind frames the peer has not read yet, when
    // the server gives up waiting (CLOSE_GRACE_MS). A socket closed outright (close(2)) answers
    // anything the peer sends afterwards, here the pong to a ping it reads first, with a reset,
    // and the reset drops what the server's kernel still held for the peer, close frame included:
    // the client saw 1006 instead of the server's code. The server now only ends its side and
    // keeps reading.
    it('still gets the close code when it reads again after CLOSE_GRACE_MS', async () => {
      const u = await registerUser(t, 'napper');
      const channelId = await createChannel(t, u, []);
      const { client } = await TestClient.connect(t.wsUrl, u.token);
      const tcp = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      tcp.pause();
      const [conn] = [...(t.app.get(ConnectionRegistry).of(u.id) ?? [])];
      conn.socket.ping(); // what the heartbeat sends; the client answers it as soon as it reads it
      // More after the ping than the client's receive buffer holds, so that the kernel on the
      // server's side still has some of it, close frame last, when the client reads again.
      const text = 'x'.repeat(3900);
      for (let i = 0; i < 40; i++) {
        await t.http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text, clientMsgId: `nap-${i}` }).expect(201);
      }
      await t.http().post('/auth/logout').set(u.auth).expect(204); // the server closes: 1008
      await new Promise((r) => setTimeout(r, CLOSE_GRACE_MS + 500));
      const raw = (conn.socket as unknown as { _socket: { writableLength: number } })._socket;
      expect(raw.writableLength).toBe(0); // everything, close frame included, was in the kernel
      tcp.resume();
      expect(await client.waitClosed(5000)).toEqual({ code: 1008, reason: 'session ended' });
    });
  });
});
