import { Column, Entity, PrimaryColumn } from 'typeorm';
import { epochMs } from '../common/epoch-ms.transformer.js';

export type ChannelKind = 'dm' | 'channel';
export type ChannelVisibility = 'public' | 'private';

@Entity('channels')
export class Channel {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 8 })
  kind!: ChannelKind;

  /** Group channels only; a DM's name is the peer's username, which depends on who looks. */
  @Column({ type: 'varchar', length: 64, nullable: true })
  name!: string | null;

  /**
   * Lower-cased name of a public channel, unique among them; NULL for private channels and DMs.
   * Private names are not unique on purpose: a create or join-by-name that failed because of one
   * would tell an outsider that a private channel of that name exists.
   */
  @Column({ name: 'name_key', type: 'varchar', length: 64, nullable: true, unique: true })
  nameKey!: string | null;

  @Column({ type: 'varchar', length: 8 })
  visibility!: ChannelVisibility;

  /** DMs only: the two user ids sorted and joined by ':', so a pair has exactly one DM. */
  @Column({ name: 'dm_key', type: 'varchar', length: 80, nullable: true, unique: true })
  dmKey!: string | null;

  /** The last assigned seq; bumped in the same transaction as the message insert. */
  @Column({ name: 'head_seq', type: 'integer', default: 0 })
  headSeq!: number;

  /** The last assigned rev: every new message and every change of one takes the next (v1.1). */
  @Column({ name: 'head_rev', type: 'integer', default: 0 })
  headRev!: number;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  /** Group channels only: a line under the name, set by the owner or an admin. */
  @Column({ type: 'varchar', length: 250, nullable: true })
  topic!: string | null;

  /** Who created the channel (its first owner); null for DMs. Kept when they leave. */
  @Column({ name: 'created_by', type: 'varchar', length: 36, nullable: true })
  createdBy!: string | null;

  /** When the owner archived it: read-only from then on (no sends, joins, edits or admin changes). */
  @Column({ name: 'archived_at', type: 'bigint', nullable: true, transformer: epochMs })
  archivedAt!: number | null;
}
