import { REDIS_SERVER_AVAILABLE } from './helpers/redis-server.js';
import { twoInstances } from './helpers/two-instances.js';
import { DATABASES } from './helpers/test-app.js';

const describeWithRedis = REDIS_SERVER_AVAILABLE ? describe.each(DATABASES) : describe.skip.each(DATABASES);
if (!REDIS_SERVER_AVAILABLE) console.warn('redis-server is not installed: the two-instance channel administration tests are skipped');


/**
 * Administrative changes are committed changes on the bus: made on one instance, they reach the
 * memory and the connections of the other at once, and the database refuses what memory has not
 * heard of yet.
 */
describeWithRedis('channel administration across two instances (Redis bus) on %s', (db) => {
  const pair = twoInstances(db);
  const { register, connect } = pair;
  let one: typeof pair.one;
  let two: typeof pair.two;
  beforeAll(() => {
    ({ one, two } = pair);
  });
  const send = (via: typeof one, u: { auth: Record<string, string>; username: string }, channelId: string) =>
    via.http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text: 'hi', clientMsgId: `${u.username}-${Math.random()}` });

  it('a member removed on one instance gets channel.left on every connection and loses access on both at once', async () => {
    const [owner, member] = await Promise.all([register('owner'), register('member')]);
    const { id } = (await one.http().post('/channels').set(owner.auth).send({ name: `x-${Date.now()}`, visibility: 'private', members: [member.username] }).expect(201)).body;
    await two.http().post(`/channels/${id}/accept`).set(member.auth).expect(200);
    const m1 = await connect(one.wsUrl, member.token);
    const m2 = await connect(two.wsUrl, member.token);
    const o2 = await connect(two.wsUrl, owner.token);
    await send(two, member, id).expect(201); // instance two has the channel cached, the member in it
    await m2.next('message.new');

    await one.http().delete(`/channels/${id}/members/${member.id}`).set(owner.auth).expect(204);
    expect(await m1.next('channel.left')).toEqual({ channelId: id });
    expect(await m2.next('channel.left')).toEqual({ channelId: id });
    expect(await o2.next('member.left')).toMatchObject({ user: { id: member.id }, by: { id: owner.id } });
    expect((await send(two, member, id).expect(404)).body.code).toBe('not_found');
    await two.http().get(`/channels/${id}/messages`).set(member.auth).expect(404);
    m2.send('message.send', { channelId: id, text: 'still?', clientMsgId: 'gone', ref: 'g' });
    expect((await m2.next('error', (d) => d.ref === 'g')).code).toBe('not_found');
    await send(two, owner, id).expect(201);
    // Only the message from before the removal reached them.
    await m2.expectNone('message.new', 300, (d) => d.message.seq > 1);
    await m1.expectNone('message.new', 0, (d) => d.message.seq > 1);
  });

  it('roles, renames and the archive made on one instance hold on the other', async () => {
    const [owner, x] = await Promise.all([register('owner'), register('x')]);
    const { id } = (await one.http().post('/channels').set(owner.auth).send({ name: `y-${Date.now()}`, visibility: 'public', members: [x.username] }).expect(201)).body;
    const c2 = await connect(two.wsUrl, x.token);
    await two.http().post(`/channels/${id}/accept`).set(x.auth).expect(200);
    await one.http().patch(`/channels/${id}/members/${x.id}`).set(owner.auth).send({ role: 'admin' }).expect(200);
    expect(await c2.next('member.updated')).toMatchObject({ user: { id: x.id }, role: 'admin' });
    await two.http().patch(`/channels/${id}`).set(x.auth).send({ topic: 'from two' }).expect(200);
    expect(await c2.next('channel.updated')).toMatchObject({ conversation: { topic: 'from two' }, by: { id: x.id } });
    await one.http().post(`/channels/${id}/archive`).set(owner.auth).expect(200);
    expect(await c2.next('channel.updated')).toMatchObject({ conversation: { archived: true } });
    expect((await send(two, x, id).expect(403)).body).toMatchObject({ code: 'forbidden', details: { reason: 'archived' } });
    expect((await two.http().patch(`/channels/${id}`).set(x.auth).send({ topic: 'again' }).expect(403)).body.details.reason).toBe('archived');
  });
});
