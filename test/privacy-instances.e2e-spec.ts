import { REDIS_SERVER_AVAILABLE } from './helpers/redis-server.js';
import { twoInstances } from './helpers/two-instances.js';
import { DATABASES } from './helpers/test-app.js';

const describeWithRedis = REDIS_SERVER_AVAILABLE ? describe.each(DATABASES) : describe.skip.each(DATABASES);
if (!REDIS_SERVER_AVAILABLE) console.warn('redis-server is not installed: the two-instance privacy tests are skipped');


/**
 * Acceptances and blocks are committed changes on the bus: an instance that did not make them
 * applies them to its memory (presence peers, the blocks it checks sends against) and renders
 * the presence frames for its own connections.
 */
describeWithRedis('privacy across two instances (Redis bus) on %s', (db) => {
  const pair = twoInstances(db);
  const { register, connect } = pair;
  let one: typeof pair.one;
  let two: typeof pair.two;
  beforeAll(() => {
    ({ one, two } = pair);
  });

  it('an acceptance, a block and an unblock made on one instance hold on the other', async () => {
    const [alice, bob] = await Promise.all([register('alice'), register('bob')]);
    const a = await connect(one.wsUrl, alice.token);
    const b = await connect(two.wsUrl, bob.token);
    const { channelId } = (await one.http().post('/dms').set(alice.auth).send({ username: bob.username }).expect(200)).body;
    await b.next('conversation.update', (d) => d.conversation.channelId === channelId); // instance two has the DM now
    await a.expectNone('presence.update', 200);

    await two.http().post(`/channels/${channelId}/accept`).set(bob.auth).expect(200);
    expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });
    expect(await b.next('presence.update')).toMatchObject({ user: { id: alice.id }, status: 'online' });

    await two.http().post(`/users/${alice.id}/block`).set(bob.auth).expect(200);
    expect(await a.next('presence.update')).toEqual({ user: { id: bob.id, username: bob.username }, status: 'offline', lastSeenAt: null });
    const send = (text: string) => one.http().post(`/channels/${channelId}/messages`).set(alice.auth).send({ text, clientMsgId: `x-${Math.random()}` });
    // Instance one rendered that frame after applying the block to its memory: its sends know it too.
    expect((await send('hello?').expect(403)).body.code).toBe('forbidden');

    await two.http().delete(`/users/${alice.id}/block`).set(bob.auth).expect(204);
    expect(await a.next('presence.update')).toMatchObject({ user: { id: bob.id }, status: 'online' });
    await send('friends again').expect(201);
  });
});
