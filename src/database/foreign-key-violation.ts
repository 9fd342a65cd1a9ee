/**
 * True for a foreign-key violation on either database: PostgreSQL's 23503, SQLite's
 * SQLITE_CONSTRAINT_FOREIGNKEY. A write naming a row that is gone (a deleted user's token).
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23503' || e?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || /FOREIGN KEY constraint failed/.test(e?.message ?? '');
}
