import { Injectable } from '@nestjs/common';
import type { Connection } from './connection.js';
import { framesAfter, textFrame } from './ws-frame.js';

export interface DeliveryOptions {
  /** A connection that already has its answer (the one that asked for the change). */
  exceptConnectionId?: string;
  /** One frame of the user's own, sent right after the shared ones in the same write. */
  personal?: (userId: string) => string;
}

/**
 * The open connections of this instance, by user: where fan-out finds its recipients. A user with
 * one connection (most of them) is held as that connection, a Set only from the second on: a Set
 * of one costs more heap than an idle connection's own state.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly byUser = new Map<string, Connection | Set<Connection>>();
  private readonly all = new Set<Connection>();
  /** Open connections per client address (the per-address quota). */
  private readonly byAddress = new Map<string, number>();

  add(conn: Connection): number {
    this.all.add(conn);
    if (conn.address) this.byAddress.set(conn.address, (this.byAddress.get(conn.address) ?? 0) + 1);
    const held = this.byUser.get(conn.user.id);
    if (held === undefined) {
      this.byUser.set(conn.user.id, conn);
      return 1;
    }
    if (held instanceof Set) return held.add(conn).size;
    this.byUser.set(conn.user.id, new Set([held, conn]));
    return 2;
  }

  /** False if it was not here (already removed): the caller's release happens once. */
  remove(conn: Connection): boolean {
    if (!this.all.delete(conn)) return false;
    if (conn.address) {
      const n = (this.byAddress.get(conn.address) ?? 1) - 1;
      if (n > 0) this.byAddress.set(conn.address, n);
      else this.byAddress.delete(conn.address);
    }
    const held = this.byUser.get(conn.user.id);
    if (held === conn) this.byUser.delete(conn.user.id);
    else if (held instanceof Set) {
      held.delete(conn);
      if (held.size === 1) this.byUser.set(conn.user.id, held.values().next().value!);
      else if (held.size === 0) this.byUser.delete(conn.user.id);
    }
    return true;
  }

  /** The user's connections here, if any. */
  of(userId: string): Iterable<Connection> | undefined {
    const held = this.byUser.get(userId);
    return held === undefined || held instanceof Set ? held : [held];
  }

  /** One of the user's connections here (the first), if any. */
  first(userId: string): Connection | undefined {
    const held = this.byUser.get(userId);
    return held instanceof Set ? held.values().next().value : held;
  }

  count(userId: string): number {
    const held = this.byUser.get(userId);
    return held === undefined ? 0 : held instanceof Set ? held.size : 1;
  }

  /** Open connections here from this client address. */
  fromAddress(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }

  connections(): IterableIterator<Connection> {
    return this.all.values();
  }

  /**
   * toUsers for a channel's members: a large channel with few of them connected here costs the
   * look-ups of those connected, not one per member (whichever side is smaller is walked).
   */
  toMembers(members: ReadonlyMap<string, unknown>, frames: string | string[], opts: DeliveryOptions = {}): number {
    return this.toUsers(this.byUser.size < members.size ? this.usersIn(members) : members.keys(), frames, opts);
  }

  private *usersIn(members: ReadonlyMap<string, unknown>): Generator<string> {
    for (const userId of this.byUser.keys()) if (members.has(userId)) yield userId;
  }

  /**
   * Sends the frames, in order, to every connection of each user here (but the excepted one),
   * and returns how many connections got them. Framed once, lazily: every socket gets the same
   * bytes (all the frames in one Buffer, so one write each), none if nobody is connected here.
   * A user's personal frame is appended to a copy of those bytes: still one write per socket
   * (a second write under cork/uncork cost a writev and the stream's bookkeeping twice).
   */
  toUsers(userIds: Iterable<string>, frames: string | string[], opts: DeliveryOptions = {}): number {
    let shared: Buffer | null = null;
    let sent = 0;
    const except = opts.exceptConnectionId;
    const personal = opts.personal;
    for (const userId of userIds) {
      const conns = this.byUser.get(userId);
      if (conns === undefined) continue;
      shared ??= typeof frames === 'string' ? textFrame(frames) : Buffer.concat(frames.map((f) => textFrame(f)));
      const bytes = personal ? framesAfter(shared, personal(userId)) : shared;
      if (!(conns instanceof Set)) {
        if (conns.id !== except) {
          conns.sendFrame(bytes);
          sent++;
        }
        continue;
      }
      for (const conn of conns) {
        if (conn.id === except) continue;
        conn.sendFrame(bytes);
        sent++;
      }
    }
    return sent;
  }
}
