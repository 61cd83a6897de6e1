import { Admin, appName, randomKey, waitFor } from '@pglock/conformance'
import {
  createLocker,
  DeadlockError,
  InvalidOptionsError,
  LockLostError,
  LockTimeoutError,
  NotInTransactionError,
  type Row,
} from '@pglock/core'
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePjs } from 'drizzle-orm/postgres-js'
import { drizzle as drizzlePgRc } from 'drizzle-orm-1-rc/node-postgres'
import { drizzle as drizzlePjsRc } from 'drizzle-orm-1-rc/postgres-js'
import pg from 'pg'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest'
import { type DrizzleDatabaseLike, type DrizzleTransactionLike, drizzleAdapter } from '../src/index.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
})
afterAll(async () => {
  await admin.close()
})

/** One drizzle database over an app-owned driver client, in the shape the tests need. */
interface App {
  readonly db: DrizzleDatabaseLike & DrizzleTransactionLike
  transaction<T>(fn: (tx: DrizzleTransactionLike) => Promise<T>): Promise<T>
  /** `tx.transaction(fn)`: a nested transaction, i.e. drizzle's own savepoint. */
  nested<T>(tx: DrizzleTransactionLike, fn: (inner: DrizzleTransactionLike) => Promise<T>): Promise<T>
  /** Runs SQL through drizzle on `on` (a db or a tx). */
  rows(on: DrizzleTransactionLike, text: string): Promise<readonly Row[]>
  /** Ends the app's driver client. */
  close(): Promise<void>
}

/** The drizzle versions and drivers under test; each builds a fresh app closed when the test ends. */
const flavours: readonly {
  readonly name: string
  readonly create: (app: string) => App
  /** The driver's own error for a dead connection, which carries no SQLSTATE. */
  readonly connectionClosed: () => Error
  /**
   * Whether pglock's statements in a tx run through drizzle's tx.execute (node-postgres), whose errors
   * are DrizzleQueryErrors wrapping the driver's, or on the tx's postgres.js sql (postgres-js).
   */
  readonly throughDrizzle: boolean
}[] = [
  ...[drizzlePg, drizzlePgRc].map((drizzle, i) => ({
    name: `drizzle ${i === 0 ? '0.45' : '1.0.0-rc.4'} node-postgres`,
    create: (app: string) => nodePg(app, drizzle),
    connectionClosed: () => new Error('Connection terminated unexpectedly'),
    throughDrizzle: true,
  })),
  ...[drizzlePjs, drizzlePjsRc].map((drizzle, i) => ({
    name: `drizzle ${i === 0 ? '0.45' : '1.0.0-rc.4'} postgres-js`,
    create: (app: string) => postgresJs(app, drizzle),
    connectionClosed: () =>
      Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' }),
    throughDrizzle: false,
  })),
]

function pgPool(app: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: app })
  pool.on('error', () => {})
  return pool
}

/** A pool ended when the test finishes. */
function newPool(app: string, max = 4): pg.Pool {
  const pool = pgPool(app, max)
  onTestFinished(() => pool.end())
  return pool
}

function nodePg(app: string, drizzle: typeof drizzlePg | typeof drizzlePgRc): App {
  const pool = pgPool(app)
  const db = (drizzle as typeof drizzlePg)({ client: pool })
  return {
    db,
    close: () => pool.end(),
    transaction: (fn) => db.transaction((tx) => fn(tx)),
    nested: (tx, fn) => (tx as typeof db).transaction((inner) => fn(inner)),
    rows: async (on, text) => ((await (on as typeof db).execute(sql.raw(text))) as { rows: Row[] }).rows,
  }
}

function postgresJs(app: string, drizzle: typeof drizzlePjs | typeof drizzlePjsRc): App {
  const client = postgres(url, { max: 4, connection: { application_name: app }, onnotice: () => {} })
  const db = (drizzle as typeof drizzlePjs)({ client })
  return {
    db,
    close: () => client.end({ timeout: 5 }),
    transaction: (fn) => db.transaction((tx) => fn(tx)),
    nested: (tx, fn) => (tx as typeof db).transaction((inner) => fn(inner)),
    // A postgres.js RowList carries count, command, …: compare its rows only.
    rows: async (on, text) => [...(await (on as typeof db).execute(sql.raw(text)))],
  }
}

describe.each(flavours)('$name', ({ create, connectionClosed, throughDrizzle }) => {
  /** The driver's error behind what a pglock statement rejected with (drizzle wraps it on node-postgres). */
  function driverError(error: unknown): { code?: unknown } {
    if (!throughDrizzle) return error as { code?: unknown }
    expect(error).toMatchObject({ message: expect.stringMatching(/^Failed query/) })
    return (error as { cause: { code?: unknown } }).cause
  }

  function setup() {
    const app = appName('drizzle')
    const a = create(app)
    const adapter = drizzleAdapter(a.db)
    const locker = createLocker(adapter)
    onTestFinished(async () => {
      await locker.close()
      await adapter.close()
      await a.close()
    })
    return { app, a, adapter, locker }
  }

  describe('transaction detection by drizzle entity kind', () => {
    it('locks on a tx until the transaction ends; refuses the root db, holding nothing', async () => {
      const { a, locker, app } = setup()
      const key = randomKey()
      await a.transaction(async (tx) => {
        await locker.transaction(tx).acquire(key)
        expect(await locker.transaction(tx).tryAcquire(randomKey(), { shared: true })).toBe(true)
        const [{ pid }] = (await a.rows(tx, 'SELECT pg_backend_pid() AS pid')) as [{ pid: number }]
        expect(await admin.locks(key)).toEqual([
          { pid, mode: 'ExclusiveLock', granted: true, applicationName: app },
        ])
      })
      expect(await admin.locks(key)).toEqual([])
      await expect(locker.transaction(a.db).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
      await expect(locker.transaction(a.db).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
      expect(await admin.heldBy(app)).toBe(0)
    })

    it('a tx used after its transaction ended is refused, not locked in autocommit', async () => {
      const { a, locker, app } = setup()
      const stale = await a.transaction(async (tx) => tx)
      const key = randomKey()
      await expect(locker.transaction(stale).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
      await expect(locker.transaction(stale).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
      await expect(locker.transaction(stale).acquire(key, { timeoutMs: 100 })).rejects.toBeInstanceOf(
        NotInTransactionError,
      )
      expect(await admin.heldBy(app)).toBe(0)
    })

    it('nested transactions: drizzle’s savepoints and pglock’s own do not clash', async () => {
      const { a, locker } = setup()
      const [inRolledBack, inReleased, outer] = [randomKey(), randomKey(), randomKey()]
      await a.transaction(async (tx) => {
        const boom = new Error('roll back the savepoint')
        await expect(
          a.nested(tx, async (inner) => {
            await locker.transaction(inner).acquire(inRolledBack, { timeoutMs: 1_000 })
            expect(await admin.locks(inRolledBack)).toHaveLength(1)
            throw boom
          }),
        ).rejects.toBe(boom)
        // ROLLBACK TO SAVEPOINT spN frees what was locked inside it; the outer transaction goes on.
        expect(await admin.locks(inRolledBack)).toEqual([])
        await a.nested(tx, async (inner) => {
          await a.nested(inner, async (innermost) => {
            await locker.transaction(innermost).acquire(inReleased, { timeoutMs: 1_000 })
          })
        })
        await locker.transaction(tx).acquire(outer, { timeoutMs: 1_000 })
        expect(await admin.locks(inReleased)).toHaveLength(1)
        expect(await admin.locks(outer)).toHaveLength(1)
        expect(await a.rows(tx, 'SELECT 1 AS one')).toEqual([{ one: 1 }])
      })
      expect(await admin.locks(inReleased)).toEqual([])
      expect(await admin.locks(outer)).toEqual([])
    })

    it('rejects things that are not a drizzle db or tx with a TypeError', async () => {
      const { locker, app } = setup()
      for (const notDrizzle of [{}, null, 'tx', { execute: async () => [] }, newPool(app)]) {
        await expect(locker.transaction(notDrizzle as never).acquire(randomKey())).rejects.toBeInstanceOf(
          TypeError,
        )
      }
    })
  })

  describe('statements and errors', () => {
    it('binds the parameters (casts kept, values never inlined) and returns booleans and int4 as such', async () => {
      const { a, adapter } = setup()
      await a.transaction(async (tx) => {
        const conn = adapter.transaction(tx)
        expect(conn.transactionStatus()).toMatch(/^(active|unknown)$/)
        const min = '-9223372036854775808'
        const rows = await conn.query(
          'SELECT $1::bigint AS k, $2::int4 AS n, $3::text AS t, $1::bigint = $4::bigint AS same, true AS b',
          [min, '7', `O'Brien $1 ); --`, min],
        )
        expect(rows).toEqual([{ k: min, n: 7, t: `O'Brien $1 ); --`, same: true, b: true }])
      })
    })

    it('reads the SQLSTATE of its own errors and, through cause, of drizzle’s DrizzleQueryError', async () => {
      const { a, adapter } = setup()
      const error = await adapter
        .transaction(a.db)
        .query('SELECT 1 / $1::int4 AS x', ['0'])
        .catch((e: unknown) => e)
      expect(driverError(error).code).toBe('22012')
      expect(adapter.sqlState(error)).toBe('22012')
      expect(adapter.isConnectionError(error)).toBe(false)
      const viaDrizzle = await a.rows(a.db, 'SELECT 1 / 0 AS x').catch((e: unknown) => e)
      expect(viaDrizzle).toMatchObject({
        message: expect.stringMatching(/^Failed query/),
        cause: { code: '22012' },
      })
      expect(adapter.sqlState(viaDrizzle)).toBe('22012')
    })

    it('a LockTimeoutError in a tx keeps the driver’s 55P03 error, and the transaction still commits', async () => {
      const { a, locker } = setup()
      const other = setup()
      const key = randomKey()
      const held = await other.locker.acquire(key)
      const mine = randomKey()
      const outcome = a.transaction(async (tx) => {
        const error = await locker
          .transaction(tx)
          .acquire(key, { timeoutMs: 50 })
          .catch((e: unknown) => e)
        expect(error).toBeInstanceOf(LockTimeoutError)
        expect(driverError((error as Error).cause).code).toBe('55P03')
        await locker.transaction(tx).acquire(mine)
        expect(await a.rows(tx, 'SELECT 1 AS one')).toEqual([{ one: 1 }])
        return 'committed'
      })
      // postgres.js's sql.begin rolls back (and rejects) at the end if it saw any statement fail,
      // unless the adapter keeps the failures the core undid out of its sight.
      await expect(outcome).resolves.toBe('committed')
      expect(await admin.locks(mine)).toEqual([])
      await held.release()
    })

    it('a deadlock between two transactions surfaces as DeadlockError with the driver’s 40P01 error', async () => {
      const { a, locker } = setup()
      const [k1, k2] = [randomKey(), randomKey()]
      let holding = 0
      let bothHold!: () => void
      const barrier = new Promise<void>((resolve) => {
        bothHold = resolve
      })
      const run = (first: typeof k1, second: typeof k1) =>
        a.transaction(async (tx) => {
          await locker.transaction(tx).acquire(first)
          if (++holding === 2) bothHold()
          await barrier
          await locker.transaction(tx).acquire(second)
        })
      const outcomes = await Promise.allSettled([run(k1, k2), run(k2, k1)])
      const rejected = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []))
      expect(rejected).toHaveLength(1)
      expect(rejected[0]).toBeInstanceOf(DeadlockError)
      expect(driverError(rejected[0]!.cause).code).toBe('40P01')
    })

    it('treats drizzle-wrapped connection failures as connection errors', () => {
      const { adapter } = setup()
      const closed = new Error('Failed query: SELECT 1', { cause: connectionClosed() })
      expect(adapter.isConnectionError(closed)).toBe(true)
      expect(adapter.sqlState(closed)).toBeUndefined()
      const wrapped = new Error('Failed query: SELECT 1', {
        cause: Object.assign(new Error('terminating connection due to administrator command'), {
          code: '57P01',
          severity: 'FATAL',
        }),
      })
      expect(adapter.sqlState(wrapped)).toBe('57P01')
      expect(adapter.isConnectionError(new Error('Failed query', { cause: new Error('x') }))).toBe(false)
    })
  })

  describe('session locks on db.$client', () => {
    it('terminating the holder’s backend reports LockLostError; the process and the db live on', async () => {
      const { a, locker } = setup()
      const key = randomKey()
      const handle = await locker.acquire(key)
      const [row] = await admin.locks(key)
      await admin.terminate(row!.pid)
      await waitFor('the loss to be reported', () => handle.signal.aborted)
      expect(handle.held).toBe(false)
      expect(handle.signal.reason).toBeInstanceOf(LockLostError)
      await handle.release()
      expect(await a.rows(a.db, 'SELECT 1 AS one')).toEqual([{ one: 1 }])
      const next = await locker.acquire(key, { timeoutMs: 2_000 })
      expect((await admin.locks(key)).map((l) => l.pid)).not.toContain(row!.pid)
      await next.release()
      expect(await admin.locks(key)).toEqual([])
    })
  })
})

describe('drizzle over a single pg client (drizzle(client))', () => {
  it('refuses session locks with a clear error, and locks on its transactions', async () => {
    const app = appName('drizzle-client')
    const pool = pgPool(app, 1)
    const client = await pool.connect()
    const db = drizzlePg({ client })
    const locker = createLocker(drizzleAdapter(db))
    onTestFinished(async () => {
      await locker.close()
      client.release()
      await pool.end()
    })
    const key = randomKey()
    await expect(locker.acquire(key)).rejects.toThrow(/drizzle\(pool\)/)
    await expect(locker.tryAcquire(key)).rejects.toBeInstanceOf(TypeError)
    expect(await admin.heldBy(app)).toBe(0)
    await db.transaction(async (tx) => {
      await locker.transaction(tx).acquire(key, { timeoutMs: 1_000 })
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([app])
    })
    expect(await admin.locks(key)).toEqual([])
    // The root db on one client is that client: outside BEGIN it is refused, inside it locks.
    await expect(locker.transaction(db).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    await db.execute(sql`BEGIN`)
    expect(await locker.transaction(db).tryAcquire(key)).toBe(true)
    await db.execute(sql`COMMIT`)
    expect(await admin.locks(key)).toEqual([])
  })

  it('passes on whether anybody waits for a pg pool, so that idle lock connections go back at once then', async () => {
    const pool = newPool(appName('dz-waiters'), 1)
    const adapter = drizzleAdapter(drizzlePg(pool))
    expect(adapter.poolHasWaiters?.()).toBe(false)
    const client = await pool.connect()
    const waiting = pool.connect()
    expect(adapter.poolHasWaiters?.()).toBe(true)
    client.release()
    ;(await waiting).release()
    expect(adapter.poolHasWaiters?.()).toBe(false)
  })

  it('rejects a db whose client is neither node-postgres nor postgres.js', () => {
    expect(() => drizzleAdapter({ $client: {} })).toThrow(TypeError)
    expect(() => drizzleAdapter({} as never)).toThrow(TypeError)
    expect(() => drizzleAdapter(null as never)).toThrow(TypeError)
  })
})

describe('drizzleAdapter options for the driver adapter', () => {
  it('idleTimeoutMs reaches the postgres-js lock connections: an idle one closes after it', async () => {
    const app = appName('dz-idle')
    const client = postgres(url, { max: 2, connection: { application_name: app }, onnotice: () => {} })
    const adapter = drizzleAdapter(drizzlePjs(client), { idleTimeoutMs: 500 })
    const locker = createLocker(adapter)
    onTestFinished(async () => {
      await locker.close()
      await adapter.close()
      await client.end()
    })
    await (await locker.acquire(randomKey())).release()
    // The app's own client has made no connection: every backend of the app is a lock connection.
    // (500 ms, not less: a host stalled for longer between the release and this check would fail it.)
    expect(await admin.backends(app)).toHaveLength(1)
    await waitFor('the idle lock connection to close', async () => (await admin.backends(app)).length === 0)
    expect(() => drizzleAdapter(drizzlePjs(client), { idleTimeoutMs: Number.NaN })).toThrow(
      InvalidOptionsError,
    )
  })

  it.each([
    [{}, 2],
    [{ prepare: false }, 0],
  ] as const)(
    'node-postgres: with %o the lock statements leave %i prepared statements on the session',
    async (options, count) => {
      // max: 1: the lock connection goes back to the pool, and the next pool query runs on its session.
      const pool = newPool(appName('dz-prepare'), 1)
      const locker = createLocker(drizzleAdapter(drizzlePg(pool), options))
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
