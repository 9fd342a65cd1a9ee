import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { epochMs } from '../common/epoch-ms.transformer.js';
import { Session } from './session.entity.js';

/**
 * A single-use WebSocket ticket (`/ws?ticket=`). In the database, not in memory, so that it is
 * single-use across instances: the handshake consumes it with one conditional UPDATE.
 */
@Entity('ws_tickets')
@Index('idx_ws_tickets_expires', ['expiresAt'])
export class WsTicket {
  /** SHA-256 (hex) of the ticket: a leaked table holds no usable ticket. */
  @PrimaryColumn({ name: 'ticket_hash', type: 'varchar', length: 64 })
  ticketHash!: string;

  @Column({ name: 'session_id', type: 'varchar', length: 36 })
  sessionId!: string;

  @ManyToOne(() => Session, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id' })
  session?: Relation<Session>;

  /** When the access token that asked for the ticket expires: the connection ends then (1008). */
  @Column({ name: 'token_expires_at', type: 'bigint', transformer: epochMs })
  tokenExpiresAt!: number;

  @Column({ name: 'expires_at', type: 'bigint', transformer: epochMs })
  expiresAt!: number;

  @Column({ name: 'used_at', type: 'bigint', nullable: true, transformer: epochMs })
  usedAt!: number | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;
}
