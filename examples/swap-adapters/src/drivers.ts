/**
 * The same app on five drivers. For each one: the app's own client, its data functions (the queries
 * an app writes anyway, in that driver's style), and a locker — where `createLocker(<adapter>)` is the
 * only pglock line that differs.
 */
import createConnectionPool, { type Transaction as DatabasesTx, sql as dbSql } from '@databases/pg'
import { databasesAdapter } from '@pglock/adapter-databases'
import { drizzleAdapter } from '@pglock/adapter-drizzle'
import { kyselyAdapter } from '@pglock/adapter-kysely'
import { pgAdapter } from '@pglock/adapter-pg'
import { postgresjsAdapter } from '@pglock/adapter-postgresjs'
import { createLocker, type Locker } from '@pglock/core'
import { sql as drizzleSql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { Kysely, type Transaction as KyselyTx, PostgresDialect } from 'kysely'
import pg from 'pg'
import postgres from 'postgres'
import type { AppData } from './lock-code.js'

/** One instance of the app on one driver. */
export interface App<Tx> {
  readonly locker: Locker<Tx>
  readonly data: AppData<Tx>
  close(): Promise<void>
}

/** The tables the app uses (created once, before any instance starts). */
export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS swap_counter (driver text PRIMARY KEY, value int NOT NULL);
  CREATE TABLE IF NOT EXISTS swap_seats (driver text, seat int, guest text NOT NULL, PRIMARY KEY (driver, seat));
`

type Factory = (url: string) => App<never>

function pgApp(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  pool.on('error', () => {})
  const data: AppData<pg.PoolClient> = {
    readCounter: async () =>
      (await pool.query(`SELECT value FROM swap_counter WHERE driver = 'pg'`)).rows[0]?.value ?? 0,
    writeCounter: async (v) => {
      await pool.query(`UPDATE swap_counter SET value = $1 WHERE driver = 'pg'`, [v])
    },
    async inTransaction(fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn(client)
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK')
        throw error
      } finally {
        client.release()
      }
    },
    seatHolder: async (tx, seat) =>
      (await tx.query(`SELECT guest FROM swap_seats WHERE driver = 'pg' AND seat = $1`, [seat])).rows[0]
        ?.guest,
    reserveSeat: async (tx, seat, guest) => {
      await tx.query(`INSERT INTO swap_seats VALUES ('pg', $1, $2)`, [seat, guest])
    },
  }
  return { locker: createLocker(pgAdapter(pool)), data, close: () => pool.end() }
}

function postgresjsApp(url: string) {
  const sql = postgres(url, { max: 4, onnotice: () => {} })
  const data: AppData<postgres.TransactionSql> = {
    readCounter: async () =>
      (await sql`SELECT value FROM swap_counter WHERE driver = 'postgresjs'`)[0]?.value ?? 0,
    writeCounter: async (v) => {
      await sql`UPDATE swap_counter SET value = ${v} WHERE driver = 'postgresjs'`
    },
    inTransaction: (fn) => sql.begin((tx) => fn(tx)) as never,
    seatHolder: async (tx, seat) =>
      (await tx`SELECT guest FROM swap_seats WHERE driver = 'postgresjs' AND seat = ${seat}`)[0]?.guest,
    reserveSeat: async (tx, seat, guest) => {
      await tx`INSERT INTO swap_seats VALUES ('postgresjs', ${seat}, ${guest})`
    },
  }
  return { locker: createLocker(postgresjsAdapter(sql)), data, close: () => sql.end() }
}

interface KyselySchema {
  swap_counter: { driver: string; value: number }
  swap_seats: { driver: string; seat: number; guest: string }
}

function kyselyApp(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  pool.on('error', () => {})
  const db = new Kysely<KyselySchema>({ dialect: new PostgresDialect({ pool }) })
  const data: AppData<KyselyTx<KyselySchema>> = {
    readCounter: async () =>
      (await db.selectFrom('swap_counter').select('value').where('driver', '=', 'kysely').executeTakeFirst())
        ?.value ?? 0,
    writeCounter: async (v) => {
      await db.updateTable('swap_counter').set({ value: v }).where('driver', '=', 'kysely').execute()
    },
    inTransaction: (fn) => db.transaction().execute(fn),
    seatHolder: async (tx, seat) =>
      (
        await tx
          .selectFrom('swap_seats')
          .select('guest')
          .where('driver', '=', 'kysely')
          .where('seat', '=', seat)
          .executeTakeFirst()
      )?.guest,
    reserveSeat: async (tx, seat, guest) => {
      await tx.insertInto('swap_seats').values({ driver: 'kysely', seat, guest }).execute()
    },
  }
  return { locker: createLocker(kyselyAdapter(db, { pool })), data, close: () => db.destroy() }
}

function drizzleApp(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  pool.on('error', () => {})
  const db = drizzle(pool)
  type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0]
  const data: AppData<Tx> = {
    readCounter: async () =>
      ((await db.execute(drizzleSql`SELECT value FROM swap_counter WHERE driver = 'drizzle'`)).rows[0]
        ?.value as number | undefined) ?? 0,
    writeCounter: async (v) => {
      await db.execute(drizzleSql`UPDATE swap_counter SET value = ${v} WHERE driver = 'drizzle'`)
    },
    inTransaction: (fn) => db.transaction((tx) => fn(tx)),
    seatHolder: async (tx, seat) =>
      (await tx.execute(drizzleSql`SELECT guest FROM swap_seats WHERE driver = 'drizzle' AND seat = ${seat}`))
        .rows[0]?.guest as string | undefined,
    reserveSeat: async (tx, seat, guest) => {
      await tx.execute(drizzleSql`INSERT INTO swap_seats VALUES ('drizzle', ${seat}, ${guest})`)
    },
  }
  return { locker: createLocker(drizzleAdapter(db)), data, close: () => pool.end() }
}

function databasesApp(url: string) {
  const db = createConnectionPool.default({ connectionString: url, poolSize: 4, bigIntMode: 'number' })
  const data: AppData<DatabasesTx> = {
    readCounter: async () =>
      (await db.query(dbSql`SELECT value FROM swap_counter WHERE driver = 'databases'`))[0]?.value ?? 0,
    writeCounter: async (v) => {
      await db.query(dbSql`UPDATE swap_counter SET value = ${v} WHERE driver = 'databases'`)
    },
    inTransaction: (fn) => db.tx((tx) => fn(tx)),
    seatHolder: async (tx, seat) =>
      (await tx.query(dbSql`SELECT guest FROM swap_seats WHERE driver = 'databases' AND seat = ${seat}`))[0]
        ?.guest,
    reserveSeat: async (tx, seat, guest) => {
      await tx.query(dbSql`INSERT INTO swap_seats VALUES ('databases', ${seat}, ${guest})`)
    },
  }
  return { locker: createLocker(databasesAdapter(db)), data, close: () => db.dispose() }
}

/** Every driver, by the name the app's rows are keyed by. */
export const drivers: Readonly<Record<string, Factory>> = {
  pg: pgApp as Factory,
  postgresjs: postgresjsApp as Factory,
  kysely: kyselyApp as Factory,
  drizzle: drizzleApp as Factory,
  databases: databasesApp as Factory,
}
