/**
 * What an acquire costs on the wire: the statements the core sends and the pool checkouts it makes,
 * counted at the driver. These are the figures `pnpm bench` measures in time; here they are exact.
 */
import { Admin, randomKey, waitFor } from '@pglock/conformance'
import { createLocker, type LockHandle } from '@pglock/core'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest'
import { type PgAdapterOptions, type PgPoolLike, pgAdapter } from '../src/index.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
})
afterAll(async () => {
  await admin.close()
})

type QueryConfig = { name?: string; text: string; values?: unknown[] }

/** Calls `listener` with each statement sent on `client` (its text, and whether it is named), then sends it. */
function onEveryQuery(client: pg.PoolClient, listener: (text: string, named: boolean) => void): void {
  const query = client.query.bind(client) as (config: QueryConfig | string, values?: unknown[]) => unknown
  ;(client as unknown as { query: typeof query }).query = (config, values) => {
    if (typeof config === 'string') listener(config, false)
    else listener(config.text, config.name !== undefined)
    return query(config, values)
  }
}

/** A locker over a pool whose checkouts and statements are recorded (the statement's function names only). */
function countingLocker(max = 4, options: PgAdapterOptions = {}) {
  const pool = new pg.Pool({ connectionString: url, max })
  pool.on('error', () => {})
  const statements: string[] = []
  let checkouts = 0
  let named = 0
  const wrapped = new WeakSet<object>()
  const counting: PgPoolLike = {
    get waitingCount() {
      return pool.waitingCount
    },
    async connect() {
      const client = await pool.connect()
      checkouts++
      if (!wrapped.has(client)) {
        wrapped.add(client)
        onEveryQuery(client, (text, isNamed) => {
          statements.push(lockFunction(text))
          if (isNamed) named++
        })
      }
      return client
    },
  }
  const locker = createLocker(pgAdapter(counting, options))
  onTestFinished(async () => {
    await locker.close()
    await pool.end()
  })
  return {
    locker,
    /** The statements and checkouts since the last call. */
    take() {
      const taken = { statements: statements.splice(0), checkouts }
      checkouts = 0
      return taken
    },
    /** How many statements were sent as named (prepared) statements, in all. */
    named: () => named,
  }
}

/** Lets the current turn of the event loop end (setImmediate callbacks run). */
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * The advisory-lock function a statement calls, which is what tells the statements apart ('set_config'
 * for the statements that set or restore the timeouts of a transaction-scoped wait).
 */
function lockFunction(text: string): string {
  const called = /pg_(try_)?advisory_(xact_)?(un)?lock(_shared)?/.exec(text)?.[0]
  return called ?? (text.includes('set_config(') ? 'set_config' : text)
}

describe('round trips per acquire (pg)', () => {
  it('uncontended: acquire + release is one statement each, timed or not, tryAcquire too', async () => {
    const { locker, take } = countingLocker()
    let checkouts = 1
    for (const acquire of [
      () => locker.acquire(randomKey()),
      () => locker.acquire(randomKey(), { timeoutMs: 5_000 }),
      () => locker.acquire(randomKey(), { signal: new AbortController().signal }),
      async () => (await locker.tryAcquire(randomKey())) as LockHandle,
    ]) {
      const handle = await acquire()
      await handle.release()
      expect(take()).toEqual({
        statements: ['pg_try_advisory_lock', 'pg_advisory_unlock'],
        checkouts,
      })
      // The next acquire comes in the same turn of the event loop: it takes the connection just freed.
      checkouts = 0
    }
  })

  it('locks taken while others are held cost one statement and no checkout', async () => {
    const { locker, take } = countingLocker()
    const first = await locker.acquire(randomKey())
    take()
    const more: LockHandle[] = []
    for (let i = 0; i < 20; i++) more.push(await locker.acquire(randomKey(), { timeoutMs: 1_000 }))
    expect(take()).toEqual({ statements: Array(20).fill('pg_try_advisory_lock'), checkouts: 0 })
    await Promise.all([first, ...more].map((h) => h.release()))
    expect(take().statements).toEqual(Array(21).fill('pg_advisory_unlock'))
  })

  it('contended: a try, then the wait; while the key stays contended, the wait alone', async () => {
    const { locker, take } = countingLocker()
    const key = randomKey()
    const blocker = await admin.hold(key)
    const first = locker.acquire(key)
    // Released once the acquire waits on the server: a fixed delay lost the race to a slow connect.
    await waitFor('the acquire to wait', async () => (await admin.locks(key)).some((l) => !l.granted))
    await blocker.release()
    await (await first).release()
    expect(take()).toEqual({
      statements: ['pg_try_advisory_lock', 'pg_advisory_lock', 'pg_advisory_unlock'],
      checkouts: 1,
    })
    const again = await locker.acquire(key)
    await again.release()
    // On the connection the first one freed: it is kept until the end of the turn for such an acquire.
    expect(take()).toEqual({ statements: ['pg_advisory_lock', 'pg_advisory_unlock'], checkouts: 0 })
    await endOfTurn()
    const third = await locker.acquire(key)
    await third.release()
    expect(take()).toEqual({ statements: ['pg_advisory_lock', 'pg_advisory_unlock'], checkouts: 1 })
    // tryAcquire never waits, so it tries whatever the key's recent history.
    const tried = await locker.tryAcquire(key)
    expect(tried?.held).toBe(true)
    await tried?.release()
    expect(take().statements).toEqual(['pg_try_advisory_lock', 'pg_advisory_unlock'])
  })

  it('transaction-scoped: the lock alone; a signal adds a savepoint around it, a timeout the settings too', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    pool.on('error', () => {})
    const locker = createLocker(pgAdapter(pool))
    const client = await pool.connect()
    onTestFinished(async () => {
      client.release()
      await locker.close()
      await pool.end()
    })
    const sent: string[] = []
    onEveryQuery(client, (text) => sent.push(lockFunction(text)))
    await client.query('BEGIN')
    sent.splice(0)
    const tx = locker.transaction(client)
    const [plain, signalled, timed] = [randomKey(), randomKey(), randomKey()]
    await tx.acquire(plain)
    expect(sent.splice(0)).toEqual(['pg_advisory_xact_lock'])
    await tx.acquire(signalled, { signal: new AbortController().signal })
    expect(sent.splice(0)).toEqual([
      'SAVEPOINT pglock_wait',
      'pg_advisory_xact_lock',
      'RELEASE SAVEPOINT pglock_wait',
    ])
    await tx.acquire(timed, { timeoutMs: 5_000 })
    expect(sent.splice(0)).toEqual([
      'SAVEPOINT pglock_wait',
      'set_config',
      'pg_advisory_xact_lock',
      'set_config',
      'RELEASE SAVEPOINT pglock_wait',
    ])
    for (const key of [plain, signalled, timed]) expect(await admin.locks(key)).toHaveLength(1)
    await client.query('COMMIT')
    for (const key of [plain, signalled, timed]) expect(await admin.locks(key)).toEqual([])
  })

  it('statements on lent connections are prepared (named), unless prepare: false', async () => {
    const prepared = countingLocker()
    await (await prepared.locker.acquire(randomKey())).release()
    expect(prepared.named()).toBe(2)
    const unprepared = countingLocker(4, { prepare: false })
    await (await unprepared.locker.acquire(randomKey())).release()
    expect(unprepared.take().statements).toHaveLength(2)
    expect(unprepared.named()).toBe(0)
    expect(() => pgAdapter(new pg.Pool(), { prepare: 'yes' as unknown as boolean })).toThrow(TypeError)
  })
})

describe('prepared statements that vanish (pg)', () => {
  it('a session whose prepared statements were dropped counts as lost; the next acquire goes elsewhere', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    pool.on('error', () => {})
    const lent: pg.PoolClient[] = []
    const locker = createLocker(
      pgAdapter({
        async connect() {
          const client = await pool.connect()
          lent.push(client)
          return client
        },
      }),
    )
    onTestFinished(async () => {
      await locker.close()
      await pool.end()
    })
    const held = await locker.acquire(randomKey())
    // Behind the library's back, as DISCARD ALL or a pooler in transaction mode would.
    await lent[0]!.query('DEALLOCATE ALL')
    const next = await locker.acquire(randomKey())
    expect(held.held).toBe(false)
    expect(held.signal.reason).toMatchObject({ code: 'LOCK_LOST' })
    expect(next.held).toBe(true)
    expect(lent).toHaveLength(2)
    await next.release()
    await held.release()
    await waitForNoLocks(lent)
  })
})

async function waitForNoLocks(clients: readonly pg.PoolClient[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const rows = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = ANY($1::int4[])`,
      [clients.map((c) => (c as unknown as { processID: number }).processID)],
    )
    if (rows[0]?.n === 0) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('advisory locks still held')
}
