/**
 * The five drivers, each opened the way its adapter's README shows: the driver's own client, a locker
 * on it, and a transaction of that driver (with pglock's lock inside, or with the raw lock statement:
 * the floor of a transaction-scoped lock on that driver).
 */
import createConnectionPool, { sql as databasesSql } from '@databases/pg'
import { databasesAdapter } from '@pglock/adapter-databases'
import { drizzleAdapter } from '@pglock/adapter-drizzle'
import { kyselyAdapter } from '@pglock/adapter-kysely'
import { pgAdapter } from '@pglock/adapter-pg'
import { postgresjsAdapter } from '@pglock/adapter-postgresjs'
import { createLocker, type Locker } from '@pglock/core'
import { sql as drizzleSql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { Kysely, sql as kyselySql, PostgresDialect } from 'kysely'
import pg from 'pg'
import postgres from 'postgres'

/** The adapters, by the id used in case ids. */
export type SubjectId = 'pg' | 'postgresjs' | 'kysely' | 'drizzle' | 'databases'

/**
 * The driver whose session-lock floor applies to an adapter: the one its session locks run on (Kysely
 * and Drizzle lend connections of the pg Pool; @databases/pg lends them through its own `db.task()`).
 */
export type FloorDriver = 'pg' | 'postgresjs' | 'databases'

export interface SubjectInfo {
  readonly id: SubjectId
  readonly label: string
  /** For the chart. */
  readonly short: string
  readonly sessionFloor: FloorDriver
}

export const SUBJECTS: readonly SubjectInfo[] = [
  { id: 'pg', label: 'pg', short: 'pg', sessionFloor: 'pg' },
  { id: 'postgresjs', label: 'postgres.js', short: 'postgres.js', sessionFloor: 'postgresjs' },
  { id: 'kysely', label: 'Kysely (pg)', short: 'Kysely', sessionFloor: 'pg' },
  { id: 'drizzle', label: 'Drizzle (node-postgres)', short: 'Drizzle', sessionFloor: 'pg' },
  { id: 'databases', label: '@databases/pg', short: '@databases/pg', sessionFloor: 'databases' },
]

/** One open driver with its locker. */
export interface OpenSubject {
  readonly locker: Locker<never>
  /** BEGIN, `locker.transaction(tx).acquire(key)`, COMMIT, through the driver's transaction API. */
  lockInTransaction(key: bigint): Promise<void>
  /** The same transaction with `pg_advisory_xact_lock` sent as raw SQL: its floor. */
  rawLockInTransaction(key: bigint): Promise<void>
  /** Closes the locker, then the driver. */
  close(): Promise<void>
}

export interface OpenOptions {
  /** Pool size. */
  readonly max: number
  readonly applicationName: string
}

const RAW_XACT_LOCK = 'SELECT pg_advisory_xact_lock($1::bigint) IS NOT NULL AS acquired'

/** A pg pool that never crashes the process on an idle client's error. */
export function pgPool(url: string, options: OpenOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max,
    application_name: options.applicationName,
  })
  pool.on('error', () => {})
  return pool
}

/** Options every postgres.js instance of the bench gets. */
export function postgresjsOptions(options: OpenOptions): postgres.Options<Record<string, never>> {
  return {
    max: options.max,
    onnotice: () => {},
    connection: { application_name: options.applicationName },
  }
}

/** Opens one adapter's driver and a locker on it. */
export async function openSubject(id: SubjectId, url: string, options: OpenOptions): Promise<OpenSubject> {
  switch (id) {
    case 'pg':
      return openPg(url, options)
    case 'postgresjs':
      return openPostgresjs(url, options)
    case 'kysely':
      return openKysely(url, options)
    case 'drizzle':
      return openDrizzle(url, options)
    case 'databases':
      return openDatabases(url, options)
  }
}

/** pg: transactions on one client checked out for the whole case, as the floor does. */
async function openPg(url: string, options: OpenOptions): Promise<OpenSubject> {
  const pool = pgPool(url, options)
  const locker = createLocker(pgAdapter(pool))
  let txClient: pg.PoolClient | undefined
  const client = async () => {
    txClient ??= await pool.connect()
    return txClient
  }
  return {
    locker,
    async lockInTransaction(key) {
      const c = await client()
      await c.query('BEGIN')
      await locker.transaction(c).acquire(key)
      await c.query('COMMIT')
    },
    async rawLockInTransaction(key) {
      const c = await client()
      await c.query('BEGIN')
      await c.query(RAW_XACT_LOCK, [String(key)])
      await c.query('COMMIT')
    },
    async close() {
      await locker.close()
      txClient?.release()
      await pool.end()
    },
  }
}

async function openPostgresjs(url: string, options: OpenOptions): Promise<OpenSubject> {
  const sql = postgres(url, postgresjsOptions(options))
  const locker = createLocker(postgresjsAdapter(sql))
  return {
    locker,
    async lockInTransaction(key) {
      await sql.begin((tx) => locker.transaction(tx).acquire(key))
    },
    async rawLockInTransaction(key) {
      await sql.begin(
        (tx) => tx`SELECT pg_advisory_xact_lock(${String(key)}::bigint) IS NOT NULL AS acquired`,
      )
    },
    async close() {
      await locker.close()
      await sql.end({ timeout: 5 })
    },
  }
}

async function openKysely(url: string, options: OpenOptions): Promise<OpenSubject> {
  const pool = pgPool(url, options)
  const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) })
  const locker = createLocker(kyselyAdapter(db, { pool }))
  return {
    locker,
    async lockInTransaction(key) {
      await db.transaction().execute((trx) => locker.transaction(trx).acquire(key))
    },
    async rawLockInTransaction(key) {
      await db.transaction().execute(async (trx) => {
        await kyselySql`SELECT pg_advisory_xact_lock(${String(key)}::bigint) IS NOT NULL AS acquired`.execute(
          trx,
        )
      })
    },
    async close() {
      await locker.close()
      await db.destroy()
    },
  }
}

async function openDrizzle(url: string, options: OpenOptions): Promise<OpenSubject> {
  const pool = pgPool(url, options)
  const db = drizzle({ client: pool })
  const locker = createLocker(drizzleAdapter(db))
  return {
    locker,
    async lockInTransaction(key) {
      await db.transaction((tx) => locker.transaction(tx).acquire(key))
    },
    async rawLockInTransaction(key) {
      await db.transaction(async (tx) => {
        await tx.execute(
          drizzleSql`SELECT pg_advisory_xact_lock(${String(key)}::bigint) IS NOT NULL AS acquired`,
        )
      })
    },
    async close() {
      await locker.close()
      await pool.end()
    },
  }
}

/** An @databases/pg ConnectionPool. */
export function databasesPool(url: string, options: OpenOptions) {
  return createConnectionPool.default({
    connectionString: url,
    poolSize: options.max,
    applicationName: options.applicationName,
    bigIntMode: 'number',
  })
}

async function openDatabases(url: string, options: OpenOptions): Promise<OpenSubject> {
  const db = databasesPool(url, options)
  const locker = createLocker(databasesAdapter(db))
  return {
    locker,
    async lockInTransaction(key) {
      await db.tx((tx) => locker.transaction(tx).acquire(key))
    },
    async rawLockInTransaction(key) {
      await db.tx(async (tx) => {
        await tx.query(
          databasesSql`SELECT pg_advisory_xact_lock(${String(key)}::bigint) IS NOT NULL AS acquired`,
        )
      })
    },
    async close() {
      await locker.close()
      await db.dispose()
    },
  }
}
