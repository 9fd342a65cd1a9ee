/**
 * The settings of every SQLite connection, TypeORM's (data-source-options.ts) and the writer
 * thread's (sqlite-writer.worker.ts, which imports this small module rather than the data source's
 * entities and migrations). WAL and foreign keys are set by TypeORM's driver and by the worker.
 *
 * temp_store = MEMORY: SQLite keeps a statement journal for a statement that may fail half-way
 * (the batch's multi-row INSERT), holding the original of every page the statement changes. Past
 * 64 KiB (16 pages) it moves to a temporary file, and an 8-message INSERT changes about 15 old
 * pages: about one commit in four created, wrote and deleted a file on the writer thread
 * (docs/benchmarks.md, 0.5.2). In memory it costs at most those pages, freed when the statement ends.
 */
export function sqliteConnectionPragmas(synchronous: 'FULL' | 'NORMAL'): string[] {
  return [`synchronous = ${synchronous}`, 'temp_store = MEMORY'];
}
