import { pgAdapter } from '@pglock/adapter-pg'
import { Admin, appName, randomKey, waitFor } from '@pglock/conformance'
import {
  createLocker,
  InvalidOptionsError,
  LockerClosedError,
  LockLostError,
  NotInTransactionError,
} from '@pglock/core'
import { CamelCasePlugin, Kysely, PostgresDialect, sql } from 'kysely'
import {
  CamelCasePlugin as CamelCasePlugin028,
  Kysely as Kysely028,
  PostgresDialect as PostgresDialect028,
} from 'kysely-0.28'
import { PostgresJSDialect } from 'kysely-postgres-js'
import pg from 'pg'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest'
import { type KyselyLike, kyselyAdapter } from '../src/index.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
})
afterAll(async () => {
  await admin.close()
})

/** Everything a test needs from one Kysely flavour; the Kysely types differ, the shape does not. */
interface Flavour {
  readonly name: string
  /** Whether a wait inside a transaction can be cancelled. */
  readonly cancels: boolean
  /** The app's db and the pool its dialect uses, closed when the test ends. */
  create(app: string, options?: { camelCase?: boolean }): { db: AppDb; pool: PoolArg }
}
type PoolArg = NonNullable<NonNullable<Parameters<typeof kyselyAdapter>[1]>['pool']>

/** The part of a Kysely db the tests use (both versions have it). */
interface AppDb extends KyselyLike {
  transaction(): { execute<T>(fn: (trx: AppDb) => Promise<T>): Promise<T> }
  startTransaction(): { execute(): Promise<AppTrx> }
  connection(): { execute<T>(fn: (conn: AppDb) => Promise<T>): Promise<T> }
  destroy(): Promise<void>
}
interface AppTrx extends AppDb {
  commit(): { execute(): Promise<void> }
  rollback(): { execute(): Promise<void> }
}

/** Another process's locker (plain pg), to hold a lock that the code under test then waits for. */
function otherLocker() {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  pool.on('error', () => {})
  const locker = createLocker(pgAdapter(pool))
  onTestFinished(async () => {
    await locker.close()
    await pool.end()
  })
  return locker
}

/** Raw SQL on a db or transaction, as app code runs it. */
async function query(db: AppDb, text: string): Promise<Record<string, unknown>[]> {
  return (await sql.raw<Record<string, unknown>>(text).execute(db as unknown as Kysely<unknown>)).rows
}

function pgFlavour(version: '0.29' | '0.28'): Flavour {
  return {
    name: `kysely ${version} + pg`,
    cancels: version === '0.29',
    create(app, { camelCase = false } = {}) {
      const pool = new pg.Pool({ connectionString: url, max: 3, application_name: app })
      pool.on('error', () => {})
      const db =
        version === '0.29'
          ? new Kysely<unknown>({
              dialect: new PostgresDialect({ pool }),
              plugins: camelCase ? [new CamelCasePlugin()] : [],
            })
          : new Kysely028<unknown>({
              dialect: new PostgresDialect028({ pool }),
              plugins: camelCase ? [new CamelCasePlugin028()] : [],
            })
      onTestFinished(() => db.destroy())
      return { db: db as unknown as AppDb, pool }
    },
  }
}

function postgresjsFlavour(): Flavour {
  return {
    name: 'kysely 0.29 + postgres.js',
    // kysely-postgres-js's cancel does not say when it reached the server (see the adapter's cancel()).
    cancels: false,
    create(app, { camelCase = false } = {}) {
      const sql = postgres(url, { max: 3, connection: { application_name: app }, onnotice: () => {} })
      const db = new Kysely<unknown>({
        dialect: new PostgresJSDialect({ postgres: sql }),
        plugins: camelCase ? [new CamelCasePlugin()] : [],
      })
      onTestFinished(() => db.destroy())
      return { db: db as unknown as AppDb, pool: sql }
    },
  }
}

const flavours = [pgFlavour('0.29'), pgFlavour('0.28'), postgresjsFlavour()]

describe.each(flavours)('$name', (flavour) => {
  function setup(options: { withPool?: boolean; camelCase?: boolean } = {}) {
    const app = appName('kysely')
    const { db, pool } = flavour.create(app, options)
    const adapter = kyselyAdapter(db, options.withPool === false ? {} : { pool })
    const locker = createLocker(adapter)
    onTestFinished(async () => {
      await locker.close()
      await adapter.close()
    })
    return { app, db, locker }
  }

  it('without { pool }, session locks reject with an error that names the fix and the reason, and hold nothing', async () => {
    const { app, db, locker } = setup({ withPool: false })
    const key = randomKey()
    const error = await locker.acquire(key).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toMatch(/kyselyAdapter\(db, \{ pool \}\)/)
    expect((error as Error).message).toMatch(/'error' listener/)
    await expect(locker.tryAcquire(key)).rejects.toThrow(/kyselyAdapter\(db, \{ pool \}\)/)
    await expect(locker.withLock(key, () => 'ran')).rejects.toThrow(/crash the process/)
    await expect(locker.tryWithLock(key, () => 'ran', {})).rejects.toThrow(/kyselyAdapter/)
    expect(await admin.locks(key)).toEqual([])
    expect(await admin.heldBy(app)).toBe(0)
    // Transaction locks still work on the same adapter.
    await db.transaction().execute(async (trx) => {
      await locker.transaction(trx).acquire(key, { timeoutMs: 1_000 })
      expect(await locker.transaction(trx).tryAcquire(randomKey(), { shared: true })).toBe(true)
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([app])
    })
    expect(await admin.locks(key)).toEqual([])
  })

  it('transaction locks work without { pool }: held until commit, and until rollback', async () => {
    const { app, db, locker } = setup({ withPool: false })
    const key = randomKey()
    await db.transaction().execute(async (trx) => {
      await locker.transaction(trx).acquire(key)
      expect(await admin.locks(key)).toEqual([
        { pid: expect.any(Number), mode: 'ExclusiveLock', granted: true, applicationName: app },
      ])
    })
    expect(await admin.locks(key)).toEqual([])
    await expect(
      db.transaction().execute(async (trx) => {
        await locker.transaction(trx).acquire(key, { shared: true })
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(await admin.locks(key)).toEqual([])
  })

  it('a terminated session-lock backend aborts handle.signal with LockLostError; the process and the db live on', async () => {
    const { db, locker } = setup()
    const key = randomKey()
    const handle = await locker.acquire(key)
    const [row] = await admin.locks(key)
    await admin.terminate(row!.pid)
    await waitFor('the handle to report the loss', () => handle.signal.aborted)
    expect(handle.held).toBe(false)
    expect(handle.signal.reason).toBeInstanceOf(LockLostError)
    await handle.release()
    // The dead client left the pool: the app's own queries and the next lock get live ones.
    expect(await query(db, 'SELECT 1 AS one')).toEqual([{ one: 1 }])
    const next = await locker.acquire(key, { timeoutMs: 2_000 })
    expect((await admin.locks(key)).map((l) => l.pid)).not.toContain(row!.pid)
    await next.release()
  })

  it('a ControlledTransaction holds its locks until commit or rollback, and is refused once it ended', async () => {
    const { app, db, locker } = setup()
    const key = randomKey()
    const trx = await db.startTransaction().execute()
    await locker.transaction(trx).acquire(key)
    expect(await locker.transaction(trx).tryAcquire(randomKey())).toBe(true)
    await locker.transaction(trx).acquire(randomKey(), { timeoutMs: 500 })
    expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([app])
    await trx.commit().execute()
    expect(await admin.heldBy(app)).toBe(0)
    await expect(locker.transaction(trx).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    await expect(locker.transaction(trx).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)

    const trx2 = await db.startTransaction().execute()
    await locker.transaction(trx2).acquire(key, { shared: true })
    expect((await admin.locks(key)).map((l) => l.mode)).toEqual(['ShareLock'])
    await trx2.rollback().execute()
    expect(await admin.locks(key)).toEqual([])
    await expect(locker.transaction(trx2).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    expect(await admin.heldBy(app)).toBe(0)
  })

  it('refuses the root db and a db.connection() db with NotInTransactionError, and a finished transaction', async () => {
    const { app, db, locker } = setup()
    const key = randomKey()
    await expect(locker.transaction(db).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    await expect(locker.transaction(db).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    await db.connection().execute(async (conn) => {
      await expect(locker.transaction(conn).acquire(key, { timeoutMs: 100 })).rejects.toBeInstanceOf(
        NotInTransactionError,
      )
    })
    let finished: AppDb | undefined
    await db.transaction().execute(async (trx) => {
      finished = trx
    })
    // Kysely itself refuses every statement on it.
    await expect(locker.transaction(finished!).acquire(key)).rejects.toThrow(/already committed/)
    expect(await admin.locks(key)).toEqual([])
    expect(await admin.heldBy(app)).toBe(0)
  })

  it('a transaction ended behind Kysely’s back (raw COMMIT) is refused, not locked in autocommit', async () => {
    const { app, db, locker } = setup()
    const key = randomKey()
    await db.transaction().execute(async (trx) => {
      await query(trx, 'COMMIT')
      await expect(locker.transaction(trx).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
      await expect(locker.transaction(trx).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
      await query(trx, 'BEGIN')
    })
    expect(await admin.heldBy(app)).toBe(0)
  })

  it('plugins that rewrite result rows (CamelCasePlugin) do not reach the statements pglock runs', async () => {
    const { db, locker } = setup({ camelCase: true })
    const [held, key] = [randomKey(), randomKey()]
    const blocker = await otherLocker().acquire(held)
    await db.transaction().execute(async (trx) => {
      await query(trx, `SET LOCAL lock_timeout = '7s'`)
      // A timed wait reads back the caller's lock_timeout to restore it: a renamed column would lose it.
      await expect(locker.transaction(trx).acquire(held, { timeoutMs: 100 })).rejects.toMatchObject({
        code: 'LOCK_TIMEOUT',
      })
      await locker.transaction(trx).acquire(key, { timeoutMs: 1_000 })
      expect(await query(trx, `SELECT current_setting('lock_timeout') AS lock_timeout`)).toEqual([
        { lockTimeout: '7s' },
      ])
    })
    await blocker.release()
  })

  it.skipIf(!flavour.cancels)(
    'an abort at any moment of a wait inside a transaction ends it promptly; the transaction stays usable (60 iterations)',
    async () => {
      const { app, db, locker } = setup()
      const key = randomKey()
      const blocker = await otherLocker().acquire(key)
      await db.transaction().execute(async (trx) => {
        for (let i = 0; i < 60; i++) {
          const controller = new AbortController()
          const reason = new Error(`abort ${i}`)
          const waiting = locker.transaction(trx).acquire(key, { signal: controller.signal })
          if (i % 3 === 0) await Promise.resolve()
          else await new Promise((resolve) => setTimeout(resolve, i % 7))
          controller.abort(reason)
          await expect(waiting).rejects.toBe(reason)
          expect(await query(trx, 'SELECT 1 AS one')).toEqual([{ one: 1 }])
        }
        expect(await admin.waiting(app)).toEqual([])
      })
      expect((await admin.locks(key)).map((l) => l.granted)).toEqual([true])
      await blocker.release()
      expect(await admin.heldBy(app)).toBe(0)
    },
    60_000,
  )

  it.skipIf(!flavour.cancels)(
    'close() rejects the wait of a ControlledTransaction without timeoutMs or signal (no savepoint: the cancel aborts the transaction)',
    async () => {
      const { app, db, locker } = setup()
      const key = randomKey()
      const blocker = await otherLocker().acquire(key)
      const trx = await db.startTransaction().execute()
      const waiting = locker
        .transaction(trx)
        .acquire(key)
        .catch((error: unknown) => error)
      await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
      await locker.close()
      expect(await waiting).toBeInstanceOf(LockerClosedError)
      expect(await admin.waiting(app)).toEqual([])
      await expect(query(trx, 'SELECT 1 AS one')).rejects.toMatchObject({ code: '25P02' })
      await trx.rollback().execute()
      expect((await admin.locks(key)).map((l) => l.granted)).toEqual([true])
      await blocker.release()
      expect(await admin.heldBy(app)).toBe(0)
    },
  )

  it('an abort racing a grant inside a transaction never cancels a later statement of the transaction (150 iterations)', async () => {
    const { app, db, locker } = setup()
    const other = otherLocker()
    const key = randomKey()
    let aborted = 0
    for (let i = 0; i < 150; i++) {
      const held = await other.acquire(key)
      await db.transaction().execute(async (trx) => {
        const controller = new AbortController()
        const reason = new Error(`abort ${i}`)
        const waiting = locker
          .transaction(trx)
          .acquire(key, { signal: controller.signal })
          .then(
            () => undefined,
            (error: unknown) => error,
          )
        await new Promise((resolve) => setTimeout(resolve, 2 + (i % 5)))
        const releasing = held.release()
        controller.abort(reason)
        await releasing
        const outcome = await waiting
        if (outcome !== undefined) {
          expect(outcome).toBe(reason)
          aborted++
        }
        // A cancel still on its way would cancel these (57014) and fail the whole transaction.
        for (let j = 0; j < 3; j++) await query(trx, 'SELECT pg_sleep(0.002)')
      })
      expect(await admin.locks(key)).toEqual([])
    }
    expect(aborted).toBeGreaterThan(0)
    expect(await admin.heldBy(app)).toBe(0)
  }, 60_000)

  it.skipIf(flavour.cancels)(
    'without cancel, an abort inside a transaction takes effect when the wait ends, holding nothing',
    async () => {
      const { app, db, locker } = setup()
      const key = randomKey()
      const blocker = await otherLocker().acquire(key)
      await db.transaction().execute(async (trx) => {
        const controller = new AbortController()
        const reason = new Error('stop')
        let settled = false
        const waiting = locker
          .transaction(trx)
          .acquire(key, { signal: controller.signal })
          .finally(() => {
            settled = true
          })
        await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
        controller.abort(reason)
        expect(await admin.waiting(app)).toHaveLength(1)
        expect(settled).toBe(false)
        // Attached before the release: the wait may end before blocker.release() resolves.
        const rejected = expect(waiting).rejects.toBe(reason)
        await blocker.release()
        await rejected
        expect(await admin.locks(key)).toEqual([])
        expect(await query(trx, 'SELECT 1 AS one')).toEqual([{ one: 1 }])
      })
    },
  )
})

describe('kysely 0.29 + postgres.js', () => {
  it('a postgres.js column transform (postgres.camel) does not rename the columns pglock reads', async () => {
    const sql = postgres(url, { max: 2, transform: postgres.camel, onnotice: () => {} })
    const db = new Kysely<unknown>({ dialect: new PostgresJSDialect({ postgres: sql }) })
    const adapter = kyselyAdapter(db, { pool: sql })
    const locker = createLocker(adapter)
    onTestFinished(async () => {
      await locker.close()
      await adapter.close()
      await db.destroy()
    })
    const [held, key] = [randomKey(), randomKey()]
    const blocker = await otherLocker().acquire(held)
    await db.transaction().execute(async (trx) => {
      await query(trx as unknown as AppDb, `SET LOCAL lock_timeout = '7s'`)
      await expect(locker.transaction(trx).acquire(held, { timeoutMs: 100 })).rejects.toMatchObject({
        code: 'LOCK_TIMEOUT',
      })
      // A timed wait reads back the caller's lock_timeout (column lock_timeout) to restore it.
      await locker.transaction(trx).acquire(key, { timeoutMs: 1_000 })
      expect(
        await query(trx as unknown as AppDb, `SELECT current_setting('lock_timeout') AS lock_timeout`),
      ).toEqual([{ lockTimeout: '7s' }])
    })
    await blocker.release()
    const handle = await locker.acquire(key, { timeoutMs: 1_000 })
    await handle.release()
    expect(await admin.locks(key)).toEqual([])
  })
})

describe('kyselyAdapter and the pool', () => {
  it('passes on whether anybody waits for the pool (pg), so that idle lock connections go back at once then', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 1 })
    onTestFinished(() => pool.end())
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) })
    expect(kyselyAdapter(db).poolHasWaiters?.()).toBe(true)
    const adapter = kyselyAdapter(db, { pool })
    expect(adapter.poolHasWaiters?.()).toBe(false)
    const client = await pool.connect()
    const waiting = pool.connect()
    expect(adapter.poolHasWaiters?.()).toBe(true)
    client.release()
    ;(await waiting).release()
    expect(adapter.poolHasWaiters?.()).toBe(false)
  })
})

describe('kyselyAdapter options for the driver adapter', () => {
  it('idleTimeoutMs reaches the postgres.js lock connections: an idle one closes after it', async () => {
    const app = appName('kysely-idle')
    const sql = postgres(url, { max: 2, connection: { application_name: app }, onnotice: () => {} })
    const db = new Kysely<unknown>({ dialect: new PostgresJSDialect({ postgres: sql }) })
    const adapter = kyselyAdapter(db, { pool: sql, idleTimeoutMs: 500 })
    const locker = createLocker(adapter)
    onTestFinished(async () => {
      await locker.close()
      await adapter.close()
      await db.destroy()
    })
    await (await locker.acquire(randomKey())).release()
    // The app's own sql has made no connection: every backend of the app is a lock connection.
    // (500 ms, not less: a host stalled for longer between the release and this check would fail it.)
    expect(await admin.backends(app)).toHaveLength(1)
    await waitFor('the idle lock connection to close', async () => (await admin.backends(app)).length === 0)
    expect(() => kyselyAdapter(db, { pool: sql, idleTimeoutMs: -1 })).toThrow(InvalidOptionsError)
  })

  it.each([
    [{}, 2],
    [{ prepare: false }, 0],
  ] as const)(
    'pg: with %o the lock statements leave %i prepared statements on the session',
    async (options, count) => {
      // max: 1: the lock connection goes back to the pool, and the next pool query runs on its session.
      const pool = new pg.Pool({ connectionString: url, max: 1 })
      onTestFinished(() => pool.end())
      const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) })
      const locker = createLocker(kyselyAdapter(db, { pool, ...options }))
      onTestFinished(() => locker.close())
      await (await locker.acquire(randomKey())).release()
      await waitFor('the lock connection to go back to the pool', () => pool.idleCount === 1)
      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_prepared_statements',
      )
      expect(rows).toEqual([{ n: count }])
    },
  )
})

describe('kyselyAdapter arguments', () => {
  it('rejects things that are not a Kysely db, a pool, or a Kysely transaction with a TypeError', async () => {
    const pool = new pg.Pool({ connectionString: url })
    onTestFinished(() => pool.end())
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) })
    expect(() => kyselyAdapter({} as never)).toThrow(TypeError)
    expect(() => kyselyAdapter(pool as never, { pool })).toThrow(TypeError)
    expect(() => kyselyAdapter(db, { pool: {} as never })).toThrow(TypeError)
    const locker = createLocker(kyselyAdapter(db, { pool }))
    await expect(locker.transaction(pool as never).acquire(randomKey())).rejects.toBeInstanceOf(TypeError)
  })
})
