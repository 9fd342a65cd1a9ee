import { DATABASES, registerUser, startApp, TestApp, TestUser } from './helpers/test-app.js';

/** Per-user quotas: what one account may create or hold (the audit's 400 channels of 1,000 members). */
describe.each(DATABASES)('quotas on %s', (db) => {
  let t: TestApp;
  let n = 0;
  beforeAll(async () => {
    t = await startApp(db, { QUOTA_CHANNELS_CREATED_PER_USER: '2', QUOTA_MEMBERS_PER_REQUEST: '3', QUOTA_CHANNELS_PER_USER: '4' });
  });
  afterAll(() => t.close());

  const create = (owner: TestUser, members: TestUser[] = [], visibility = 'private') =>
    t.http().post('/channels').set(owner.auth).send({ name: `q-${++n}-${Date.now().toString(36)}`, visibility, members: members.map((m) => m.username) });

  it('refuses more members in one request than QUOTA_MEMBERS_PER_REQUEST', async () => {
    const owner = await registerUser(t, 'owner');
    const others = await Promise.all([1, 2, 3, 4].map(() => registerUser(t, 'm')));
    const res = await create(owner, others).expect(400);
    expect(res.body).toMatchObject({ code: 'invalid_payload', details: { quota: 'members_per_request', limit: 3 } });
    await create(owner, others.slice(0, 3)).expect(201);
  });

  it('refuses a channel past QUOTA_CHANNELS_CREATED_PER_USER, also when joining by name creates one', async () => {
    const owner = await registerUser(t, 'maker');
    await create(owner).expect(201);
    await create(owner).expect(201);
    const res = await create(owner).expect(403);
    expect(res.body).toMatchObject({ code: 'forbidden', details: { quota: 'channels_created_per_user', limit: 2 } });
  });

  it('refuses to put a user in more than QUOTA_CHANNELS_PER_USER channels: joining, being added, a new DM', async () => {
    const busy = await registerUser(t, 'busy');
    const makers = await Promise.all([1, 2, 3, 4, 5].map(() => registerUser(t, 'host')));
    for (const m of makers.slice(0, 4)) await create(m, [busy]).expect(201);
    const refused = await create(makers[4], [busy]).expect(403);
    expect(refused.body).toMatchObject({ code: 'forbidden', details: { quota: 'channels_per_user', usernames: [busy.username] } });
    const pub = (await create(makers[4], [], 'public').expect(201)).body.id;
    expect((await t.http().post(`/channels/${pub}/join`).set(busy.auth).expect(403)).body.details.quota).toBe('channels_per_user');
    await t.http().post('/dms').set(makers[4].auth).send({ username: busy.username }).expect(403);
    // Leaving one makes room again.
    const first = (await t.http().get('/conversations').set(busy.auth).expect(200)).body[0].channelId;
    await t.http().post(`/channels/${first}/leave`).set(busy.auth).expect(204);
    await t.http().post(`/channels/${pub}/join`).set(busy.auth).expect(200);
  });
});
