/**
 * True for a unique-constraint violation on either database: PostgreSQL's 23505, SQLite's
 * SQLITE_CONSTRAINT_UNIQUE. Callers turn it into `conflict`, or treat it as a race they lost.
 */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(e?.message ?? '');
}
