import type { ValueTransformer } from 'typeorm';

/**
 * Timestamps are stored as epoch milliseconds (bigint) so that SQLite and PostgreSQL share one
 * schema and one set of queries; PostgreSQL returns bigint as a string, hence the transformer.
 */
export const epochMs: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null || value === undefined ? null : Number(value)),
};
