import { Injectable } from '@nestjs/common';
import type { Connection } from './connection.js';

/** The open connections of this instance, by user: where fan-out finds its recipients. */
@Injectable()
export class ConnectionRegistry {
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly all = new Set<Connection>();

  add(conn: Connection): number {
    this.all.add(conn);
    let set = this.byUser.get(conn.user.id);
    if (!set) this.byUser.set(conn.user.id, (set = new Set()));
    set.add(conn);
    return set.size;
  }

  /** Returns how many connections the user still has here. */
  remove(conn: Connection): number {
    this.all.delete(conn);
    const set = this.byUser.get(conn.user.id);
    if (!set) return 0;
    set.delete(conn);
    if (set.size === 0) this.byUser.delete(conn.user.id);
    return set.size;
  }

  of(userId: string): ReadonlySet<Connection> | undefined {
    return this.byUser.get(userId);
  }

  connections(): IterableIterator<Connection> {
    return this.all.values();
  }
}
