import type { WebSocket } from 'ws';
import { Connection } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';
import { textFrame } from './ws-frame.js';

describe('ConnectionRegistry delivery', () => {
  const written = new Map<string, Buffer[]>();
  const policy = { sendBufferCap: 1 << 20, onSlowConsumer: () => { throw new Error('slow'); }, onServerClose: () => undefined };
  const connect = (registry: ConnectionRegistry, id: string, userId: string) => {
    // Every frame is written to the TCP socket (a fake one here, never corked for long).
    const tcp = { writableLength: 0, writableCorked: 0, cork: () => undefined, uncork: () => undefined, write: (b: Buffer) => { written.set(id, [...(written.get(id) ?? []), b]); return true; } };
    const socket = { readyState: 1, bufferedAmount: 0, _socket: tcp };
    const conn = new Connection(id, { id: userId, username: userId }, socket as unknown as WebSocket, null, policy);
    conn.open('{"event":"session.ready"}'); // nothing held from now on
    written.delete(id); // session.ready is not what is checked here
    registry.add(conn);
    return conn;
  };
  beforeEach(() => written.clear());

  it.each([
    ['fewer connected than members', ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8']],
    ['more connected than members', ['u1', 'u3', 'x']],
  ])('reaches exactly the connected members (%s), each with its own frame in the same write', (_, memberIds) => {
    const registry = new ConnectionRegistry();
    connect(registry, 'a', 'u1');
    connect(registry, 'b', 'u1');
    connect(registry, 'c', 'u3');
    connect(registry, 'd', 'nonmember1');
    connect(registry, 'e', 'nonmember2');
    connect(registry, 'f', 'nonmember3');
    connect(registry, 'g', 'nonmember4');
    const members = new Map(memberIds.map((id) => [id, {}]));
    const sent = registry.toMembers(members, ['m1', 'm2'], { personal: (u) => `own:${u}`, exceptConnectionId: 'b' });
    expect(sent).toBe(2);
    const shared = Buffer.concat([textFrame('m1'), textFrame('m2')]);
    expect([...written.keys()].sort()).toEqual(['a', 'c']);
    expect(written.get('a')).toEqual([Buffer.concat([shared, textFrame('own:u1')])]);
    expect(written.get('c')).toEqual([Buffer.concat([shared, textFrame('own:u3')])]);
  });

  it('writes the same Buffer to every connection when nothing is personal', () => {
    const registry = new ConnectionRegistry();
    connect(registry, 'a', 'u1');
    connect(registry, 'b', 'u2');
    expect(registry.toMembers(new Map([['u1', {}], ['u2', {}]]), 'm')).toBe(2);
    expect(written.get('a')![0]).toBe(written.get('b')![0]);
    expect(written.get('a')![0].equals(textFrame('m'))).toBe(true);
  });

  it("counts, lists and removes a user's connections as one, then several, then one again", () => {
    const registry = new ConnectionRegistry();
    const a = connect(registry, 'a', 'u1');
    expect([registry.count('u1'), [...registry.of('u1')!], registry.first('u1')]).toEqual([1, [a], a]);
    const b = connect(registry, 'b', 'u1');
    const c = connect(registry, 'c', 'u1');
    expect([registry.count('u1'), [...registry.of('u1')!]]).toEqual([3, [a, b, c]]);
    expect(registry.remove(a)).toBe(true);
    expect(registry.count('u1')).toBe(2);
    expect(registry.remove(c)).toBe(true);
    expect([registry.count('u1'), [...registry.of('u1')!], registry.first('u1')]).toEqual([1, [b], b]);
    expect(registry.remove(c)).toBe(false); // already gone: nothing changes
    expect(registry.count('u1')).toBe(1);
    expect(registry.toMembers(new Map([['u1', {}]]), 'm')).toBe(1);
    expect(registry.remove(b)).toBe(true);
    expect([registry.count('u1'), registry.of('u1'), registry.first('u1')]).toEqual([0, undefined, undefined]);
    expect(registry.toMembers(new Map([['u1', {}]]), 'm')).toBe(0);
    expect([...registry.connections()]).toEqual([]);
  });
});
