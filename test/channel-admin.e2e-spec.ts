import { randomUUID } from 'node:crypto';
import { createChannel, DATABASES, registerUser, startApp, suiteApp, TestApp, TestUser } from './helpers/test-app.js';
import { TestClient } from './helpers/ws-client.js';
import { AuditService } from '../src/audit/audit.service.js';

/**
 * Channel administration: roles (owner, admin, member), details, rename/topic/visibility, archive,
 * the member list with presence, invitations, removals, role changes, hidden DMs, and pages of the
 * conversation list; every refusal with its stable code.
 */
describe.each(DATABASES)('channel administration on %s', (db) => {
  const suite = suiteApp(db);
  let t: TestApp;
  beforeAll(() => {
    t = suite.t;
  });

  const users = (n: number) => Promise.all(Array.from({ length: n }, () => registerUser(t, 'adm')));
  async function connect(u: TestUser) {
    const { client, ready } = await TestClient.connect(t.wsUrl, u.token);
    suite.track(client);
    return { client, ready };
  }
  const http = () => t.http();
  const send = (u: TestUser, channelId: string, text = 'hi') =>
    http().post(`/channels/${channelId}/messages`).set(u.auth).send({ text, clientMsgId: `${u.username}-${randomUUID()}` });
  const details = (u: TestUser, id: string) => http().get(`/channels/${id}`).set(u.auth);
  const patch = (u: TestUser, id: string, body: object) => http().patch(`/channels/${id}`).set(u.auth).send(body);
  const invite = (u: TestUser, id: string, who: TestUser[]) => http().post(`/channels/${id}/members`).set(u.auth).send({ usernames: who.map((w) => w.username) });
  const remove = (u: TestUser, id: string, target: TestUser) => http().delete(`/channels/${id}/members/${target.id}`).set(u.auth);
  const setRole = (u: TestUser, id: string, target: TestUser, role: string) => http().patch(`/channels/${id}/members/${target.id}`).set(u.auth).send({ role });
  const members = async (u: TestUser, id: string, q = '') => (await http().get(`/channels/${id}/members${q}`).set(u.auth).expect(200)).body;
  const accept = (u: TestUser, id: string) => http().post(`/channels/${id}/accept`).set(u.auth).expect(200);
  /** A channel of `owner` with `admin` made admin and `member` in, all accepted. */
  async function staffed(visibility = 'public') {
    const [owner, admin, member, outsider] = await users(4);
    const id = await createChannel(t, owner, [admin, member], visibility);
    await Promise.all([accept(admin, id), accept(member, id)]);
    await setRole(owner, id, admin, 'admin').expect(200);
    return { id, owner, admin, member, outsider };
  }
  const code = (res: { body: { code: string } }) => res.body.code;

  it('records every administrative action in the audit log, with who did it, in the same transaction', async () => {
    const [owner, admin, member, extra] = await users(4);
    const id = await createChannel(t, owner, [admin, member]);
    await setRole(owner, id, admin, 'admin').expect(200);
    await patch(admin, id, { topic: 'audited' }).expect(200);
    await invite(admin, id, [extra]).expect(200);
    await remove(admin, id, extra).expect(204);
    await patch(member, id, { topic: 'refused' }).expect(403); // refused: not recorded
    await http().post(`/channels/${id}/archive`).set(owner.auth).expect(200);
    const { entries } = await t.app.get(AuditService).page(undefined, 100);
    const mine = entries.filter((e) => e.target === id).reverse();
    expect(mine.map((e) => [e.action, e.actor.split(':')[1]])).toEqual([
      ['channel.set_role', owner.id], ['channel.update', admin.id], ['channel.invite', admin.id], ['channel.remove_member', admin.id], ['channel.archive', owner.id],
    ]);
    expect(mine[0].details).toEqual({ userId: admin.id, from: 'member', to: 'admin' });
    expect(mine[3].details).toEqual({ userId: extra.id });
  });

  describe('details', () => {
    it('shows name, topic, visibility, memberCount, createdBy, archived and the caller\'s role', async () => {
      const { id, owner, admin, member } = await staffed();
      const body = (await details(member, id).expect(200)).body;
      expect(body).toMatchObject({
        id, kind: 'channel', topic: null, visibility: 'public', memberCount: 3, createdBy: { id: owner.id, username: owner.username },
        archived: false, archivedAt: null, role: 'member',
      });
      expect((await details(owner, id).expect(200)).body.role).toBe('owner');
      expect((await details(admin, id).expect(200)).body.role).toBe('admin');
    });

    it('shows a public channel to anyone (role null), a private one only to members', async () => {
      const pub = await staffed();
      expect((await details(pub.outsider, pub.id).expect(200)).body).toMatchObject({ role: null, memberCount: 3 });
      const priv = await staffed('private');
      expect(code(await details(priv.outsider, priv.id).expect(404))).toBe('not_found');
      expect(code(await details(priv.outsider, randomUUID()).expect(404))).toBe('not_found');
      expect(code(await details(priv.outsider, 'nope').expect(400))).toBe('invalid_payload');
    });

    it("shows a DM to its members with the peer's name and no creator", async () => {
      const [a, b, c] = await users(3);
      const dm = (await http().post('/dms').set(a.auth).send({ username: b.username }).expect(200)).body;
      expect((await details(a, dm.channelId).expect(200)).body).toMatchObject({ kind: 'dm', name: b.username, visibility: 'private', memberCount: 2, createdBy: null, role: 'member' });
      await details(c, dm.channelId).expect(404);
    });
  });

  describe('rename, topic, visibility', () => {
    it('lets the owner and an admin change them; members get channel.updated with by', async () => {
      const { id, owner, admin, member } = await staffed();
      const m = (await connect(member)).client;
      const name = `renamed-${randomUUID().slice(0, 8)}`;
      const res = await patch(owner, id, { name, topic: 'Release planning' }).expect(200);
      expect(res.body).toMatchObject({ name, topic: 'Release planning' });
      const updated = await m.next('channel.updated');
      expect(updated).toMatchObject({ conversation: { channelId: id, name, topic: 'Release planning', archived: false }, by: { id: owner.id } });
      await patch(admin, id, { topic: '' }).expect(200);
      expect(await m.next('channel.updated')).toMatchObject({ conversation: { topic: null }, by: { id: admin.id } });
      expect((await http().get('/conversations').set(member.auth).expect(200)).body.find((c: { channelId: string }) => c.channelId === id)).toMatchObject({ name, topic: null });
    });

    it('refuses members, outsiders, DMs and empty or bad bodies', async () => {
      const { id, member, outsider, owner } = await staffed();
      expect(code(await patch(member, id, { topic: 'x' }).expect(403))).toBe('forbidden');
      expect(code(await patch(outsider, id, { topic: 'x' }).expect(403))).toBe('forbidden');
      const priv = await staffed('private');
      expect(code(await patch(priv.outsider, priv.id, { topic: 'x' }).expect(404))).toBe('not_found');
      expect((await patch(owner, id, {}).expect(200)).body.topic).toBeNull(); // nothing to change
      expect(code(await patch(member, id, {}).expect(403))).toBe('forbidden');
      expect(code(await patch(owner, id, { name: '-bad' }).expect(400))).toBe('invalid_payload');
      expect(code(await patch(owner, id, { topic: 'x'.repeat(251) }).expect(400))).toBe('invalid_payload');
      expect(code(await patch(owner, id, { visibility: 'secret' }).expect(400))).toBe('invalid_payload');
      expect(code(await patch(owner, id, { topic: null }).expect(400))).toBe('invalid_payload');
      const [a, b] = await users(2);
      const dm = (await http().post('/dms').set(a.auth).send({ username: b.username }).expect(200)).body;
      expect(code(await patch(a, dm.channelId, { topic: 'x' }).expect(403))).toBe('forbidden');
    });

    it('keeps public names unique, and never lets a private name block anyone', async () => {
      const one = await staffed();
      const two = await staffed('private');
      const pubName = (await details(one.owner, one.id)).body.name;
      expect(code(await patch(two.owner, two.id, { name: pubName.toUpperCase() }).expect(409))).toBe('conflict');
      const other = await staffed();
      expect(code(await patch(other.owner, other.id, { name: pubName }).expect(409))).toBe('conflict');
      // Made private, the name is free for a public channel; and two private channels may share one.
      await patch(one.owner, one.id, { visibility: 'private' }).expect(200);
      await patch(other.owner, other.id, { name: pubName }).expect(200);
      expect(code(await patch(one.owner, one.id, { visibility: 'public' }).expect(409))).toBe('conflict');
      const privName = `private-${randomUUID().slice(0, 8)}`;
      await patch(two.owner, two.id, { name: privName }).expect(200);
      await patch(one.owner, one.id, { name: privName }).expect(200);
      // A private channel leaves the directory; the outsider now gets not_found.
      expect((await http().get(`/channels?query=${privName}`).set(one.outsider.auth).expect(200)).body).toEqual([]);
      await details(one.outsider, one.id).expect(404);
    });
  });

  describe('archive', () => {
    it('is the owner\'s alone, tells members, and makes the channel read-only over HTTP and WebSocket', async () => {
      const { id, owner, admin, member, outsider } = await staffed();
      const { client: m } = await connect(member);
      await send(member, id, 'before').expect(201);
      expect(code(await http().post(`/channels/${id}/archive`).set(member.auth).expect(403))).toBe('forbidden');
      expect(code(await http().post(`/channels/${id}/archive`).set(admin.auth).expect(403))).toBe('forbidden');
      expect(code(await http().post(`/channels/${id}/archive`).set(outsider.auth).expect(403))).toBe('forbidden');
      const archived = (await http().post(`/channels/${id}/archive`).set(owner.auth).expect(200)).body;
      expect(archived).toMatchObject({ archived: true, archivedAt: expect.any(String) });
      expect(await m.next('channel.updated')).toMatchObject({ conversation: { channelId: id, archived: true }, by: { id: owner.id } });
      // Again: the same answer, no second event.
      await http().post(`/channels/${id}/archive`).set(owner.auth).expect(200);
      await m.expectNone('channel.updated', 200);

      const refused = { code: 'forbidden', details: { reason: 'archived' } };
      expect((await send(member, id).expect(403)).body).toMatchObject(refused);
      m.send('message.send', { channelId: id, text: 'x', clientMsgId: 'arch-1', ref: 's' });
      expect(await m.next('error', (d) => d.ref === 's')).toMatchObject(refused);
      m.send('typing', { channelId: id, ref: 't' });
      expect(await m.next('error', (d) => d.ref === 't')).toMatchObject(refused);
      expect((await http().post(`/channels/${id}/join`).set(outsider.auth).expect(403)).body).toMatchObject(refused);
      const { client: o } = await connect(outsider);
      o.send('channel.join', { channelId: id, ref: 'j' });
      expect(await o.next('error', (d) => d.ref === 'j')).toMatchObject(refused);
      expect((await patch(owner, id, { topic: 'x' }).expect(403)).body).toMatchObject(refused);
      expect((await invite(owner, id, [outsider]).expect(403)).body).toMatchObject(refused);
      expect((await remove(owner, id, member).expect(403)).body).toMatchObject(refused);
      expect((await setRole(owner, id, member, 'admin').expect(403)).body).toMatchObject(refused);
      // Still readable, markers still move, members may leave.
      expect((await http().get(`/channels/${id}/messages`).set(member.auth).expect(200)).body.messages).toHaveLength(1);
      await http().post(`/channels/${id}/read`).set(admin.auth).send({ seq: 1 }).expect(200);
      await http().post(`/channels/${id}/leave`).set(admin.auth).expect(204);
      expect((await details(member, id).expect(200)).body).toMatchObject({ archived: true, memberCount: 2 });
    });

    it('has nothing to archive in a DM', async () => {
      const [a, b] = await users(2);
      const dm = (await http().post('/dms').set(a.auth).send({ username: b.username }).expect(200)).body;
      expect(code(await http().post(`/channels/${dm.channelId}/archive`).set(a.auth).expect(403))).toBe('forbidden');
      await http().post(`/channels/${randomUUID()}/archive`).set(a.auth).expect(404);
    });
  });

  describe('member list', () => {
    it('pages by username with roles; a cursor it gave continues, a made-up one is refused', async () => {
      const { id, owner, admin, member } = await staffed();
      const extra = await users(3);
      await invite(owner, id, extra).expect(200);
      const all: { user: { id: string; username: string }; role: string }[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { members: typeof all; nextCursor: string | null } = await members(member, id, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.members.length).toBeLessThanOrEqual(2);
        all.push(...page.members);
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      // Every member once (the order is the database's collation of usernames, the same for every page).
      expect(all.map((m) => m.user.username).sort()).toEqual([owner, admin, member, ...extra].map((u) => u.username).sort());
      expect(Object.fromEntries(all.map((m) => [m.user.id, m.role]))).toMatchObject({ [owner.id]: 'owner', [admin.id]: 'admin', [member.id]: 'member' });
      expect(code(await http().get(`/channels/${id}/members?cursor=nope!`).set(member.auth).expect(400))).toBe('invalid_payload');
      expect(code(await http().get(`/channels/${id}/members?limit=0`).set(member.auth).expect(400))).toBe('invalid_payload');
      expect(code(await http().get(`/channels/${id}/members?limit=201`).set(member.auth).expect(400))).toBe('invalid_payload');
    });

    it('shows presence only between members who both accepted, and never across a block', async () => {
      const { id, owner, admin, member, outsider } = await staffed();
      await Promise.all([connect(owner), connect(admin), connect(outsider)]);
      await invite(owner, id, [outsider]).expect(200); // invited, not accepted yet
      const status = async (viewer: TestUser) =>
        Object.fromEntries((await members(viewer, id)).members.map((m: { user: { id: string }; status: string }) => [m.user.id, m.status]));
      expect(await status(member)).toEqual({ [owner.id]: 'online', [admin.id]: 'online', [member.id]: 'offline', [outsider.id]: 'offline' });
      expect((await status(outsider))[owner.id]).toBe('offline'); // the invitee has not accepted
      await http().post(`/users/${admin.id}/block`).set(member.auth).expect(200);
      expect((await status(member))[admin.id]).toBe('offline');
      expect((await status(admin))[member.id]).toBe('offline');
      expect((await status(owner))[admin.id]).toBe('online');
    });

    it('is for members only', async () => {
      const pub = await staffed();
      expect(code(await http().get(`/channels/${pub.id}/members`).set(pub.outsider.auth).expect(403))).toBe('forbidden');
      const priv = await staffed('private');
      expect(code(await http().get(`/channels/${priv.id}/members`).set(priv.outsider.auth).expect(404))).toBe('not_found');
    });
  });

  describe('invitations', () => {
    it('lets any member invite to a public channel; the invitee gets a request, the others member.joined with by', async () => {
      const { id, member, owner } = await staffed();
      const [guest] = await users(1);
      const { client: o } = await connect(owner);
      const { client: g } = await connect(guest);
      const res = await invite(member, id, [guest]).expect(200);
      expect(res.body).toMatchObject({ id, memberCount: 4, role: 'member' });
      expect(await o.next('member.joined')).toEqual({ channelId: id, user: { id: guest.id, username: guest.username }, by: { id: member.id, username: member.username } });
      expect(await g.next('conversation.update', (d) => d.conversation.channelId === id)).toMatchObject({ conversation: { accepted: false } });
      // Again: nothing new, no event.
      expect((await invite(member, id, [guest]).expect(200)).body.memberCount).toBe(4);
      await o.expectNone('member.joined', 200);
      // A plain join has no by.
      const [walker] = await users(1);
      await http().post(`/channels/${id}/join`).set(walker.auth).expect(200);
      expect(await o.next('member.joined')).toEqual({ channelId: id, user: { id: walker.id, username: walker.username } });
    });

    it("to a private channel only by the owner or an admin; users who blocked the inviter are skipped quietly", async () => {
      const { id, member, admin, outsider } = await staffed('private');
      const [guest, blocker] = await users(2);
      expect(code(await invite(member, id, [guest]).expect(403))).toBe('forbidden');
      expect(code(await invite(outsider, id, [guest]).expect(404))).toBe('not_found');
      await http().post(`/users/${admin.id}/block`).set(blocker.auth).expect(200);
      expect((await invite(admin, id, [guest, blocker]).expect(200)).body.memberCount).toBe(4);
      await http().get(`/channels/${id}/messages`).set(guest.auth).expect(200);
      await http().get(`/channels/${id}/messages`).set(blocker.auth).expect(404);
    });

    it('refuses outsiders, unknown users, bad bodies, DMs', async () => {
      const { id, owner, outsider } = await staffed();
      expect(code(await invite(outsider, id, [owner]).expect(403))).toBe('forbidden');
      const res = await http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: ['no_such_user_x'] }).expect(404);
      expect(res.body).toMatchObject({ code: 'not_found', details: { usernames: ['no_such_user_x'] } });
      expect(code(await http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: [] }).expect(400))).toBe('invalid_payload');
      expect(code(await http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: 'bob' }).expect(400))).toBe('invalid_payload');
      expect(code(await http().post(`/channels/${id}/members`).set(owner.auth).send({}).expect(400))).toBe('invalid_payload');
      const [a, b, c] = await users(3);
      const dm = (await http().post('/dms').set(a.auth).send({ username: b.username }).expect(200)).body;
      expect(code(await invite(a, dm.channelId, [c]).expect(403))).toBe('forbidden');
    });
  });

  describe('removal', () => {
    it('takes access away at once: channel.left on every connection, member.left with by to the others', async () => {
      const { id, admin, member, owner } = await staffed('private');
      const { client: m1 } = await connect(member);
      const { client: m2 } = await connect(member);
      const { client: o } = await connect(owner);
      await remove(admin, id, member).expect(204);
      expect(await m1.next('channel.left')).toEqual({ channelId: id });
      expect(await m2.next('channel.left')).toEqual({ channelId: id });
      expect(await o.next('member.left')).toEqual({ channelId: id, user: { id: member.id, username: member.username }, by: { id: admin.id, username: admin.username } });
      expect(code(await send(member, id).expect(404))).toBe('not_found');
      await http().get(`/channels/${id}/messages`).set(member.auth).expect(404);
      m1.send('message.send', { channelId: id, text: 'still here?', clientMsgId: 'gone-1', ref: 'g' });
      expect((await m1.next('error', (d) => d.ref === 'g')).code).toBe('not_found');
      m1.send('sync', { channels: { [id]: 0 }, ref: 'y' });
      expect((await m1.next('error', (d) => d.ref === 'y')).code).toBe('not_found');
      await send(owner, id, 'after').expect(201);
      await m1.expectNone('message.new', 300);
      expect((await http().get('/conversations').set(member.auth).expect(200)).body.map((c: { channelId: string }) => c.channelId)).not.toContain(id);
      // In a public channel, a removed member may join again (a ban is not part of this).
      const pub = await staffed();
      await remove(pub.owner, pub.id, pub.member).expect(204);
      expect(code(await send(pub.member, pub.id).expect(403))).toBe('forbidden');
    });

    it('follows the roles: members remove nobody, admins remove members only, nobody removes the owner or themselves', async () => {
      const { id, owner, admin, member, outsider } = await staffed();
      const [admin2] = await users(1);
      await invite(owner, id, [admin2]).expect(200);
      await setRole(owner, id, admin2, 'admin').expect(200);
      expect(code(await remove(member, id, admin).expect(403))).toBe('forbidden');
      expect(code(await remove(admin, id, owner).expect(403))).toBe('forbidden');
      expect(code(await remove(admin, id, admin2).expect(403))).toBe('forbidden');
      expect(code(await remove(admin, id, admin).expect(403))).toBe('forbidden');
      expect(code(await remove(owner, id, owner).expect(403))).toBe('forbidden');
      expect(code(await remove(outsider, id, member).expect(403))).toBe('forbidden');
      expect(code(await remove(owner, id, outsider).expect(404))).toBe('not_found');
      expect(code(await http().delete(`/channels/${id}/members/not-a-uuid`).set(owner.auth).expect(400))).toBe('invalid_payload');
      await remove(owner, id, admin2).expect(204);
      await remove(admin, id, member).expect(204);
      const [a, b] = await users(2);
      const dm = (await http().post('/dms').set(a.auth).send({ username: b.username }).expect(200)).body;
      expect(code(await remove(a, dm.channelId, b).expect(403))).toBe('forbidden');
    });
  });

  describe('roles', () => {
    it("are the owner's to give; members get member.updated; an admin can then manage", async () => {
      const [owner, x] = await users(2);
      const id = await createChannel(t, owner, [x], 'private');
      const { client: c } = await connect(x);
      expect(code(await patch(x, id, { topic: 'mine' }).expect(403))).toBe('forbidden');
      const res = await setRole(owner, id, x, 'admin').expect(200);
      expect(res.body).toMatchObject({ user: { id: x.id, username: x.username }, role: 'admin', status: 'offline' });
      expect(await c.next('member.updated')).toEqual({ channelId: id, user: { id: x.id, username: x.username }, role: 'admin', by: { id: owner.id, username: owner.username } });
      await patch(x, id, { topic: 'mine' }).expect(200);
      // The same role again: no event.
      await setRole(owner, id, x, 'admin').expect(200);
      await c.expectNone('member.updated', 200);
      await setRole(owner, id, x, 'member').expect(200);
      expect((await c.next('member.updated')).role).toBe('member');
    });

    it('refuses admins, members, outsiders, the owner\'s own role, ownership, strangers and DMs', async () => {
      const { id, owner, admin, member, outsider } = await staffed();
      expect(code(await setRole(admin, id, member, 'admin').expect(403))).toBe('forbidden');
      expect(code(await setRole(member, id, member, 'admin').expect(403))).toBe('forbidden');
      expect(code(await setRole(outsider, id, member, 'admin').expect(403))).toBe('forbidden');
      expect(code(await setRole(owner, id, owner, 'member').expect(403))).toBe('forbidden');
      expect(code(await setRole(owner, id, member, 'owner').expect(400))).toBe('invalid_payload');
      expect(code(await http().patch(`/channels/${id}/members/${member.id}`).set(owner.auth).send({}).expect(400))).toBe('invalid_payload');
      expect(code(await setRole(owner, id, outsider, 'admin').expect(404))).toBe('not_found');
      const [a, b] = await users(2);
      const dm = (await http().post('/dms').set(a.auth).send({ username: b.username }).expect(200)).body;
      expect(code(await setRole(a, dm.channelId, b, 'admin').expect(403))).toBe('forbidden');
    });
  });

  describe('hidden DMs', () => {
    it('leave the list (and session.ready) until the next message brings them back', async () => {
      const [a, b] = await users(2);
      const dm = (await http().post('/dms').set(a.auth).send({ username: b.username }).expect(200)).body;
      await send(b, dm.channelId, 'hello').expect(201);
      const { client: a1 } = await connect(a);
      await http().post(`/channels/${dm.channelId}/hide`).set(a.auth).expect(204);
      expect(await a1.next('conversation.hidden')).toEqual({ channelId: dm.channelId });
      const list = async () => (await http().get('/conversations').set(a.auth).expect(200)).body.map((c: { channelId: string }) => c.channelId);
      expect(await list()).not.toContain(dm.channelId);
      const { ready } = await connect(a);
      expect(ready.conversations.map((c: { channelId: string }) => c.channelId)).not.toContain(dm.channelId);
      // Still readable, still the peer's.
      await http().get(`/channels/${dm.channelId}/messages`).set(a.auth).expect(200);
      expect((await http().get('/conversations').set(b.auth).expect(200)).body.map((c: { channelId: string }) => c.channelId)).toContain(dm.channelId);
      await send(b, dm.channelId, 'are you there?').expect(201);
      expect(await a1.next('conversation.update', (d) => d.conversation.channelId === dm.channelId)).toMatchObject({ conversation: { unreadCount: 2 } });
      expect(await list()).toContain(dm.channelId);
    });

    it('is for DMs only', async () => {
      const { id, member, outsider } = await staffed();
      expect(code(await http().post(`/channels/${id}/hide`).set(member.auth).expect(403))).toBe('forbidden');
      expect(code(await http().post(`/channels/${id}/hide`).set(outsider.auth).expect(403))).toBe('forbidden');
      expect(code(await http().post(`/channels/${randomUUID()}/hide`).set(member.auth).expect(404))).toBe('not_found');
    });
  });

  describe('conversation list pages', () => {
    it('walks the whole list with limit and before, in the unpaged order; unpaged stays the v1 array', async () => {
      const [u] = await users(1);
      for (let i = 0; i < 5; i++) await createChannel(t, u);
      const full = (await http().get('/conversations').set(u.auth).expect(200)).body.map((c: { channelId: string }) => c.channelId);
      expect(full).toHaveLength(5);
      const walked: string[] = [];
      let before: string | undefined;
      for (;;) {
        const page = (await http().get(`/conversations?limit=2${before ? `&before=${before}` : ''}`).set(u.auth).expect(200)).body;
        walked.push(...page.map((c: { channelId: string }) => c.channelId));
        if (page.length < 2) break;
        before = page[page.length - 1].channelId;
      }
      expect(walked).toEqual(full);
      expect((await http().get(`/conversations?before=${full[3]}`).set(u.auth).expect(200)).body).toHaveLength(1);
      expect(code(await http().get(`/conversations?before=${randomUUID()}`).set(u.auth).expect(404))).toBe('not_found');
      expect(code(await http().get('/conversations?before=nope').set(u.auth).expect(400))).toBe('invalid_payload');
      expect(code(await http().get('/conversations?limit=0').set(u.auth).expect(400))).toBe('invalid_payload');
    });
  });

  it('invitations respect QUOTA_MEMBERS_PER_REQUEST and QUOTA_CHANNELS_PER_USER', async () => {
    const q = await startApp(db, { QUOTA_MEMBERS_PER_REQUEST: '2', QUOTA_CHANNELS_PER_USER: '1' });
    try {
      const [owner, a, b, c] = await Promise.all([1, 2, 3, 4].map(() => registerUser(q, 'quota')));
      const id = (await q.http().post('/channels').set(owner.auth).send({ name: `qi-${randomUUID().slice(0, 8)}`, visibility: 'private' }).expect(201)).body.id;
      const many = await q.http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: [a.username, b.username, c.username] }).expect(400);
      expect(many.body).toMatchObject({ code: 'invalid_payload', details: { quota: 'members_per_request', limit: 2, fields: { usernames: expect.any(Array) } } });
      await q.http().post('/channels').set(a.auth).send({ name: `qa-${randomUUID().slice(0, 8)}`, visibility: 'private' }).expect(201);
      const full = await q.http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: [a.username] }).expect(403);
      expect(full.body).toMatchObject({ code: 'forbidden', details: { quota: 'channels_per_user', usernames: [a.username] } });
      await q.http().post(`/channels/${id}/members`).set(owner.auth).send({ usernames: [b.username] }).expect(200);
    } finally {
      await q.close();
    }
  });
});
