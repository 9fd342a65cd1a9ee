/**
 * The settings of every SQLite connection, TypeORM's (data-source-options.ts) and the writer
 * thread's (sqlite-writer.worker.ts, which imports this small module rather than the data source's
 * entities and migrations). WAL and foreign keys are set by TypeORM's driver and by the worker.
 *
 * temp_store = MEMORY: SQLite keeps a statement journal for a statement that may fail half-way
 * (the batch's multi-row INSERT), holding the original of every page the statement changes. Past
 * 64 KiB it spills to a temporary file, which an 8-message INSERT touching about 16 pages reaches
 * about every other commit: an openat, an unlink, sixteen more pwrites and their ext4 work on
 * the writer thread (strace of the inbound scenario, docs/benchmarks.md). In memory it costs at
 * most those pages, and is freed at the end of the statement.
 */
export function sqliteConnectionPragmas(synchronous: 'FULL' | 'NORMAL'): string[] {
  return [`synchronous = ${synchronous}`, 'temp_store = MEMORY'];
}
