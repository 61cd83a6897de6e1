import createConnectionPool, { type ConnectionPool, type ConnectionPoolConfig, sql } from '@databases/pg'
import { Admin, appName, randomKey, randomPairKey, waitFor } from '@pglock/conformance'
import {
  createLocker,
  type Locker,
  LockLostError,
  LockTimeoutError,
  lockKey,
  NotInTransactionError,
} from '@pglock/core'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest'
import { type DatabasesPoolLike, type DatabasesQueryableLike, databasesAdapter } from '../src/index.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
})
afterAll(async () => {
  await admin.close()
})

interface Setup {
  readonly app: string
  readonly db: ConnectionPool
  readonly locker: Locker<DatabasesQueryableLike>
}

/** A pool of the app's own (2 connections unless told otherwise) and a locker on it, both closed after the test. */
function setup(
  options: ConnectionPoolConfig = {},
  wrap = (db: ConnectionPool): DatabasesPoolLike => db,
): Setup {
  const app = appName('databases')
  const db = createConnectionPool.default({
    connectionString: url,
    applicationName: app,
    poolSize: 2,
    // Today's (lossy) default, set explicitly only to silence its deprecation warning.
    bigIntMode: 'number',
    ...options,
  })
  const locker = createLocker(databasesAdapter(wrap(db)))
  onTestFinished(async () => {
    await locker.close()
    await db.dispose()
  })
  return { app, db, locker }
}

/** The pool as a driver without reachable internals shows it: only the public Queryable API. */
function publicApiOnly(db: ConnectionPool): DatabasesPoolLike {
  return {
    type: db.type,
    sql: db.sql,
    query: (query) => db.query(query as never),
    task: (fn) =>
      db.task((conn) => fn({ type: conn.type, sql: conn.sql, query: (q) => conn.query(q as never) })),
  }
}

/** Collects what would crash the process (or be reported as unhandled) while the test runs. */
function watchProcess(): unknown[] {
  const crashes: unknown[] = []
  const onCrash = (error: unknown) => crashes.push(error)
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  onTestFinished(() => {
    process.off('uncaughtException', onCrash)
    process.off('unhandledRejection', onCrash)
  })
  return crashes
}

/** Nothing leaked: every backend of the app idle (so back in its pool), none holding a lock. */
async function expectNothingLeaked(app: string, poolSize = 2): Promise<void> {
  await waitFor('every backend of the app to be idle', async () => {
    const backends = await admin.backends(app)
    return backends.length <= poolSize && backends.every((b) => b.state === 'idle')
  })
  expect(await admin.heldBy(app)).toBe(0)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe('@databases/pg adapter: statements', () => {
  it('runs the core’s text with $n parameters (bigint and int4 casts, repeats, out of order) and returns row objects', async () => {
    // bigIntMode left at its lossy default: nothing here may depend on int8 results.
    const { db } = setup()
    const adapter = databasesAdapter(db)
    const conn = await adapter.connect({ onLost: () => {} })
    const rows = await conn.query(
      `SELECT $3::int4 + $2::int4 AS sum, $1::bigint::text AS big, $1::text AS again, ` +
        `$1::bigint = -9223372036854775808 AS exact, true AS yes, NULL::boolean AS unknown, pg_backend_pid() AS pid`,
      ['-9223372036854775808', '2147483646', '1'],
    )
    expect(rows).toEqual([
      {
        sum: 2147483647,
        big: '-9223372036854775808',
        again: '-9223372036854775808',
        exact: true,
        yes: true,
        unknown: null,
        pid: expect.any(Number),
      },
    ])
    await expect(conn.query('SELECT $1::int4 AS a, $2::int4 AS b', ['1'])).rejects.toThrow(RangeError)
    await conn.release({ destroy: false })
  })

  it('keys at the ends of the int8 range lock the right ids with the default (lossy) bigIntMode', async () => {
    const { locker, app } = setup()
    for (const input of [-(2n ** 63n), 2n ** 63n - 1n, [-(2 ** 31), 2 ** 31 - 1] as const]) {
      const key = lockKey(input)
      const handle = await locker.acquire(key)
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([app])
      await handle.release()
      expect(await admin.locks(key)).toEqual([])
    }
  })

  it('reports server errors with their SQLSTATE (55P03 from a pool lock_timeout)', async () => {
    const { db } = setup({ lockTimeoutMilliseconds: 50 })
    const adapter = databasesAdapter(db)
    const key = randomKey()
    const holder = await setup().locker.acquire(key)
    const error = await db
      .query(sql`SELECT pg_advisory_lock(${String(key.kind === 'bigint' ? key.key : 0)}::bigint)`)
      .catch((e: unknown) => e)
    expect(adapter.sqlState(error)).toBe('55P03')
    expect(adapter.isConnectionError(error)).toBe(false)
    expect(adapter.sqlState(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBeUndefined()
    await holder.release()
  })
})

describe('@databases/pg adapter: handing connections back', () => {
  it('release({ destroy: false }) recycles the session; release({ destroy: true }) ends it and @databases opens a new one', async () => {
    const { db } = setup({ poolSize: 1 })
    const adapter = databasesAdapter(db)
    const pidOf = async () => (await db.query(sql`SELECT pg_backend_pid() AS pid`))[0].pid as number
    const first = await pidOf()
    const kept = await adapter.connect({ onLost: () => {} })
    expect(await kept.query('SELECT pg_backend_pid() AS pid', [])).toEqual([{ pid: first }])
    await kept.release({ destroy: false })
    expect(await pidOf()).toBe(first)
    const discarded = await adapter.connect({ onLost: () => {} })
    await discarded.release({ destroy: true })
    await waitFor(
      'the discarded backend to end',
      async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [first])).length === 0,
    )
    expect(await pidOf()).not.toBe(first)
  })

  it('listens to the connection only while it is lent', async () => {
    const { db } = setup({ poolSize: 1 })
    const adapter = databasesAdapter(db)
    const listeners = () =>
      db.task(async (conn) => {
        const client = (conn as unknown as { _driver: { client: NodeJS.EventEmitter } })._driver.client
        return [client.listenerCount('error'), client.listenerCount('end')]
      })
    const idle = await listeners()
    const conn = await adapter.connect({ onLost: () => {} })
    await conn.release({ destroy: false })
    for (let i = 0; i < 20; i++)
      await (await adapter.connect({ onLost: () => {} })).release({ destroy: false })
    expect(await listeners()).toEqual(idle)
  })

  it('a wait for a pool connection honours timeoutMs, and the connection that arrives late goes back', async () => {
    const { locker, app } = setup({ poolSize: 1 })
    const held = await locker.acquire(randomKey())
    // The one connection holds `held`; a wait needs a connection of its own, so it waits for the pool.
    const busy = randomKey()
    const blocker = await admin.hold(busy)
    await expect(locker.acquire(busy, { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeoutError)
    await blocker.release()
    await held.release()
    const next = await locker.acquire(randomKey(), { timeoutMs: 1_000 })
    await next.release()
    await expectNothingLeaked(app, 1)
  })
})

describe('@databases/pg adapter: lost connections', () => {
  it('terminating a held lock’s backend aborts handle.signal with LockLostError at once; the process lives and the pool serves on', async () => {
    const crashes = watchProcess()
    const { locker, db, app } = setup()
    const key = randomKey()
    const handle = await locker.acquire(key)
    const [row] = await admin.locks(key)
    await admin.terminate(row!.pid)
    await waitFor('the handle to report the loss', () => handle.signal.aborted)
    expect(handle.held).toBe(false)
    expect(handle.signal.reason).toBeInstanceOf(LockLostError)
    await handle.release()
    expect(await db.query(sql`SELECT 1 AS one`)).toEqual([{ one: 1 }])
    const next = await locker.acquire(key, { timeoutMs: 2_000 })
    expect((await admin.locks(key)).map((l) => l.pid)).not.toContain(row!.pid)
    await next.release()
    await expectNothingLeaked(app)
    expect(crashes).toEqual([])
  })

  it('a backend terminated mid-wait rejects that acquire with ConnectionLostError (the driver’s error as cause); the process lives and the pool serves on', async () => {
    const crashes = watchProcess()
    const holder = setup()
    const { locker, db, app } = setup()
    const key = randomKey()
    const held = await holder.locker.acquire(key)
    const waiting = locker.acquire(key).catch((e: unknown) => e)
    await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
    await admin.terminate((await admin.waiting(app))[0]!)
    expect(await waiting).toMatchObject({ code: 'CONNECTION_LOST', cause: { code: '57P01' } })
    await held.release()
    expect(await db.query(sql`SELECT 1 AS one`)).toEqual([{ one: 1 }])
    await (await locker.acquire(key, { timeoutMs: 2_000 })).release()
    await expectNothingLeaked(app)
    expect(crashes).toEqual([])
  })

  it('without @databases internals the loss is reported on the next use at the latest, and nothing crashes or leaks', async () => {
    const crashes = watchProcess()
    const { locker, db, app } = setup({}, publicApiOnly)
    const key = randomKey()
    const handle = await locker.acquire(key)
    const [row] = await admin.locks(key)
    await admin.terminate(row!.pid)
    await waitFor('the backend to end', async () => (await admin.locks(key)).length === 0)
    await handle.release()
    expect(handle.signal.reason).toBeInstanceOf(LockLostError)
    await expect(
      locker.withLock(key, async () => {
        await admin.terminate((await admin.locks(key))[0]!.pid)
        await waitFor('the backend to end', async () => (await admin.locks(key)).length === 0)
      }),
    ).rejects.toBeInstanceOf(LockLostError)
    expect(await db.query(sql`SELECT 1 AS one`)).toEqual([{ one: 1 }])
    await (await locker.acquire(key, { timeoutMs: 2_000 })).release()
    await expectNothingLeaked(app)
    expect(crashes).toEqual([])
  })
})

describe('@databases/pg adapter: the pool’s lockTimeoutMilliseconds / statementTimeoutMilliseconds', () => {
  const timeouts = { lockTimeoutMilliseconds: 100, statementTimeoutMilliseconds: 200 }

  it('a session wait without timeoutMs outlasts them; a timed wait gets its own timeout; the settings stay', async () => {
    const other = setup()
    const { locker, db, app } = setup(timeouts)
    const key = randomKey()
    const held = await other.locker.acquire(key)
    const t0 = performance.now()
    const releaseLater = sleep(600).then(() => held.release())
    const handle = await locker.acquire(key)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(550)
    await releaseLater
    await handle.release()
    const again = await other.locker.acquire(key)
    const t1 = performance.now()
    await expect(locker.acquire(key, { timeoutMs: 400 })).rejects.toBeInstanceOf(LockTimeoutError)
    expect(performance.now() - t1).toBeGreaterThanOrEqual(390)
    await again.release()
    expect(
      await db.query(
        sql`SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`,
      ),
    ).toEqual([{ l: '100ms', s: '200ms' }])
    await expectNothingLeaked(app)
  })

  it('a transaction wait without timeoutMs outlasts them, also when db.tx() sets its own, and leaves them as they were', async () => {
    const other = setup()
    const { locker, db } = setup(timeouts)
    for (const options of [undefined, { lockTimeoutMilliseconds: 50, statementTimeoutMilliseconds: 150 }]) {
      const key = randomKey()
      const held = await other.locker.acquire(key)
      const settings = await db.tx(async (tx) => {
        const t0 = performance.now()
        const releaseLater = sleep(500).then(() => held.release())
        await locker.transaction(tx).acquire(key)
        expect(performance.now() - t0).toBeGreaterThanOrEqual(450)
        await releaseLater
        expect((await admin.locks(key)).map((l) => l.granted)).toEqual([true])
        return tx.query(
          sql`SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`,
        )
      }, options)
      expect(settings).toEqual([
        options === undefined ? { l: '100ms', s: '200ms' } : { l: '50ms', s: '150ms' },
      ])
      expect(await admin.locks(key)).toEqual([])
    }
  })
})

describe('@databases/pg adapter: transaction scope', () => {
  it('a lock taken in a nested tx() (a savepoint) ends with the outer transaction, or with the savepoint’s rollback', async () => {
    const { locker, db } = setup()
    const [kept, undone] = [randomKey(), randomPairKey()]
    await db.tx(async (tx) => {
      await tx.tx((inner) => locker.transaction(inner).acquire(kept))
      await tx
        .tx(async (inner) => {
          expect(await locker.transaction(inner).tryAcquire(undone, { shared: true })).toBe(true)
          throw new Error('undo')
        })
        .catch(() => {})
      expect((await admin.locks(kept)).map((l) => l.granted)).toEqual([true])
      expect(await admin.locks(undone)).toEqual([])
    })
    expect(await admin.locks(kept)).toEqual([])
  })

  it('refuses the pool without sending anything, and a task connection outside BEGIN', async () => {
    const { locker, db, app } = setup()
    const key = randomKey()
    await expect(locker.transaction(db).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    await expect(locker.transaction(db).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    expect(await admin.backends(app)).toEqual([])
    await db.task(async (conn) => {
      await expect(locker.transaction(conn).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
      await expect(locker.transaction(conn).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    })
    expect(await admin.locks(key)).toEqual([])
  })

  it('locks on a task connection inside a BEGIN its owner sent by hand', async () => {
    const { locker, db } = setup()
    const key = randomKey()
    await db.task(async (conn) => {
      await conn.query(sql`BEGIN`)
      await locker.transaction(conn).acquire(key, { timeoutMs: 500 })
      expect((await admin.locks(key)).map((l) => l.granted)).toEqual([true])
      await conn.query(sql`COMMIT`)
    })
    expect(await admin.locks(key)).toEqual([])
  })

  it('rejects things that are not @databases/pg objects with a TypeError', async () => {
    const { locker, db } = setup()
    expect(() => databasesAdapter({} as never)).toThrow(TypeError)
    await db.task(async (conn) => {
      expect(() => databasesAdapter(conn as never)).toThrow(TypeError)
    })
    await expect(locker.transaction({} as never).acquire(randomKey())).rejects.toBeInstanceOf(TypeError)
  })
})
