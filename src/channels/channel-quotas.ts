import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';

/**
 * What one user may hold (QUOTA_* settings; 0: no limit): an audit saw one account create 400
 * private channels of 1,000 members each. Counted in the database when a channel is created or
 * joined (not a hot path), so the counts hold across instances.
 */
@Injectable()
export class ChannelQuotas {
  constructor(
    private readonly db: DataSource,
    private readonly config: AppConfig,
  ) {}

  /** A create (`members`) or an invitation (`usernames`) adds at most QUOTA_MEMBERS_PER_REQUEST members. */
  checkMembersPerRequest(count: number, field: 'members' | 'usernames' = 'members'): void {
    const limit = this.config.quotas.membersPerRequest;
    if (limit > 0 && count > limit) {
      throw new AppError('invalid_payload', `${field}: at most ${limit} per request (add more by invitation)`, {
        fields: { [field]: [`at most ${limit} members per request`] },
        quota: 'members_per_request',
        limit,
      });
    }
  }

  /** The creator owns fewer than QUOTA_CHANNELS_CREATED_PER_USER channels. */
  async checkCreate(userId: string): Promise<void> {
    const limit = this.config.quotas.channelsCreatedPerUser;
    if (limit === 0) return;
    const [row] = await this.db.query(`SELECT COUNT(*) AS n FROM memberships WHERE user_id = ${this.param(1)} AND role = 'owner'`, [userId]);
    if (Number(row.n) >= limit) throw quota('channels_created_per_user', limit, `you own ${limit} channels already, the most one user may create`);
  }

  /** Each of these users is in fewer than QUOTA_CHANNELS_PER_USER channels (DMs count). */
  async checkRoom(users: { id: string; username: string }[], selfId: string): Promise<void> {
    const limit = this.config.quotas.channelsPerUser;
    if (limit === 0 || users.length === 0) return;
    const full = new Set<string>();
    for (let i = 0; i < users.length; i += 500) {
      const chunk = users.slice(i, i + 500);
      const rows: { user_id: string }[] = await this.db.query(
        `SELECT user_id FROM memberships WHERE user_id IN (${chunk.map((_, k) => this.param(k + 1)).join(', ')})
         GROUP BY user_id HAVING COUNT(*) >= ${Number(limit)}`,
        chunk.map((u) => u.id),
      );
      for (const r of rows) full.add(r.user_id);
    }
    if (full.size === 0) return;
    if (full.has(selfId)) throw quota('channels_per_user', limit, `you are in ${limit} channels already, the most one user may be in; leave one first`);
    const names = users.filter((u) => full.has(u.id)).map((u) => u.username);
    throw quota('channels_per_user', limit, `${names.slice(0, 20).join(', ')} cannot be added: in ${limit} channels already`, { usernames: names });
  }

  private param(n: number): string {
    return this.db.options.type === 'postgres' ? `$${n}` : '?';
  }
}

function quota(name: string, limit: number, message: string, extra: Record<string, unknown> = {}): AppError {
  return new AppError('forbidden', message, { quota: name, limit, ...extra });
}
