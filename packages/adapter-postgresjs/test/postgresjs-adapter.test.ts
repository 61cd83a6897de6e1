import { Admin, appName, randomKey, SilentProxy, waitFor } from '@pglock/conformance'
import {
  createLocker,
  DeadlockError,
  InvalidOptionsError,
  type LockHandle,
  type LockKey,
  LockLostError,
  LockTimeoutError,
  NotInTransactionError,
} from '@pglock/core'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished, vi } from 'vitest'
import { type PostgresjsAdapterOptions, type PostgresSqlLike, postgresjsAdapter } from '../src/index.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
})
afterAll(async () => {
  await admin.close()
})

/** The app's own instance, an adapter and a locker over it, all closed when the test ends. */
function setup(
  options: postgres.Options<Record<string, never>> = {},
  adapterOptions: PostgresjsAdapterOptions = {},
) {
  const app = appName('pjs')
  const connection = { ...options.connection, application_name: app }
  const sql = postgres(url, { max: 2, onnotice: () => {}, ...options, connection })
  const adapter = postgresjsAdapter(sql, adapterOptions)
  const locker = createLocker(adapter)
  onTestFinished(async () => {
    await locker.close()
    await adapter.close()
    await sql.end()
  })
  return { app, sql, adapter, locker }
}

async function holderPid(key: LockKey): Promise<number> {
  const [row] = await admin.locks(key)
  return row!.pid
}

describe('postgres.js adapter: lost connections', () => {
  it('terminating the backend of an idle held lock delivers LockLostError at once; the app’s sql keeps working', async () => {
    const { sql, locker, app } = setup({ max: 1 })
    const key = randomKey()
    const handle = await locker.acquire(key)
    const pid = await holderPid(key)
    await admin.terminate(pid)
    await waitFor('the handle to report the loss', () => handle.signal.aborted)
    expect(handle.signal.reason).toBeInstanceOf(LockLostError)
    expect(handle.held).toBe(false)
    await handle.release()
    // The app's own pool (max: 1) was never involved: no poisoning, no hang (drivers.md B2).
    expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }])
    const reserved = await sql.reserve()
    expect(await reserved`SELECT 2 AS two`).toEqual([{ two: 2 }])
    reserved.release()
    const next = await locker.acquire(key, { timeoutMs: 2_000 })
    expect(await holderPid(key)).not.toBe(pid)
    await next.release()
    expect((await admin.backends(app)).map((b) => b.pid)).not.toContain(pid)
  })

  it('terminating a waiting backend rejects the acquire with the driver’s error and the locker recovers', async () => {
    const holder = setup()
    const { locker, app, sql } = setup()
    const key = randomKey()
    const held = await holder.locker.acquire(key)
    const waiting = locker.acquire(key)
    await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
    const [pid] = await admin.waiting(app)
    // Attached first: the wait may reject before admin.terminate() resolves.
    const rejected = expect(waiting).rejects.toMatchObject({
      code: 'CONNECTION_LOST',
      cause: { code: 'CONNECTION_CLOSED' },
    })
    await admin.terminate(pid!)
    await rejected
    await held.release()
    const next = await locker.acquire(key, { timeoutMs: 2_000 })
    expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([app])
    await next.release()
    expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }])
  })

  it('withLock rejects with LockLostError when the holder is terminated during fn', async () => {
    const { locker } = setup()
    const key = randomKey()
    const outcome = locker.withLock(key, async (lock) => {
      await admin.terminate(await holderPid(key))
      await waitFor('the loss to be signalled', () => lock.signal.aborted)
      return 'done'
    })
    await expect(outcome).rejects.toBeInstanceOf(LockLostError)
  })

  it('once the lock connection died, its queries reject at once instead of reconnecting to a new session', async () => {
    const { adapter, app } = setup()
    let cause: unknown
    const conn = await adapter.connect({
      onLost: (error) => {
        cause = error
      },
    })
    const [row] = await conn.query('SELECT pg_backend_pid() AS pid', [])
    await admin.terminate(row!.pid as number)
    await waitFor('onLost to be called', () => cause !== undefined)
    expect(adapter.isConnectionError(cause)).toBe(true)
    expect(adapter.sqlState(cause)).toBeUndefined()
    await expect(conn.query('SELECT 1 AS one', [])).rejects.toBe(cause)
    expect(await admin.backends(app)).toEqual([])
    await conn.release({ destroy: true })
  })

  it('an idle lock connection that dies is never used again; the next lock gets a new one', async () => {
    const { locker, adapter, app } = setup({}, { idleTimeoutMs: 60_000 })
    const key = randomKey()
    await (await locker.acquire(key)).release()
    const [idle] = await admin.backends(app)
    await admin.terminate(idle!.pid)
    await waitFor('the backend to end', async () => (await admin.backends(app)).length === 0)
    // The server drops the backend from pg_stat_activity a moment before its socket closes: an acquire
    // in that window gets the dying connection and fails with ConnectionLostError (the driver's error as
    // its cause), never hangs or crashes, nor waits for the dead connection's end.
    const t0 = performance.now()
    const first = await locker.acquire(key, { timeoutMs: 2_000 }).catch((error: unknown) => error)
    expect(performance.now() - t0).toBeLessThan(1_000)
    if (first instanceof Error) {
      expect(first).toMatchObject({ code: 'CONNECTION_LOST' })
      expect(adapter.isConnectionError(first.cause)).toBe(true)
    } else await (first as LockHandle).release()
    const handle = await locker.acquire(key, { timeoutMs: 2_000 })
    expect(await holderPid(key)).not.toBe(idle!.pid)
    await handle.release()
  })
})

describe('postgres.js adapter: lock connections', () => {
  it('lends connections with the app’s connection settings, rows with JS booleans and numbers', async () => {
    const { adapter, app } = setup({ connection: { lock_timeout: 7_000 } })
    const conn = await adapter.connect({ onLost: () => {} })
    const rows = await conn.query(
      `SELECT current_setting('lock_timeout') AS l, current_setting('application_name') AS a, $1::int4 AS n, $2::bool AS b`,
      ['42', 'true'],
    )
    expect(rows).toEqual([{ l: '7s', a: app, n: 42, b: true }])
    await conn.release({ destroy: false })
  })

  it('reuses one lock connection for consecutive locks', async () => {
    const { locker, app } = setup()
    const pids = new Set<number>()
    for (let i = 0; i < 20; i++) {
      const key = randomKey()
      const handle = await locker.acquire(key)
      pids.add(await holderPid(key))
      await handle.release()
    }
    expect(pids.size).toBe(1)
    expect(await admin.backends(app)).toEqual([{ pid: [...pids][0], state: 'idle' }])
  })

  it('poolHasWaiters() says whether a connect waits for a lock connection (the core then hands idle ones back at once)', async () => {
    const sql = postgres(url, { max: 1, onnotice: () => {} })
    const adapter = postgresjsAdapter(sql)
    onTestFinished(async () => {
      await adapter.close()
      await sql.end()
    })
    expect(adapter.poolHasWaiters?.()).toBe(false)
    const first = await adapter.connect({ onLost: () => {} })
    expect(adapter.poolHasWaiters?.()).toBe(false)
    const waiting = adapter.connect({ onLost: () => {} })
    expect(adapter.poolHasWaiters?.()).toBe(true)
    await first.release({ destroy: false })
    const second = await waiting
    expect(adapter.poolHasWaiters?.()).toBe(false)
    await second.release({ destroy: false })
  })

  it('holds at most sql.options.max lock connections; further acquires queue in order', async () => {
    const { locker, app } = setup({ max: 2 })
    // Held locks share a lock connection, but a blocking wait has one to itself: two waits take both.
    const busy = [randomKey(), randomKey()] as const
    const blockers = await Promise.all(busy.map((key) => admin.hold(key)))
    const first = locker.acquire(busy[0])
    const second = locker.acquire(busy[1])
    await waitFor('both waits to be on the server', async () => (await admin.waiting(app)).length === 2)
    const order: string[] = []
    const queue = (name: string) =>
      locker.acquire(randomKey()).then((handle) => {
        order.push(name)
        return handle
      })
    const a = queue('a')
    const b = queue('b')
    await expect(locker.acquire(randomKey(), { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeoutError)
    expect(order).toEqual([])
    await blockers[0]!.release()
    await (await first).release()
    const handleA = await a
    expect(order).toEqual(['a'])
    await blockers[1]!.release()
    await (await second).release()
    const handleB = await b
    expect(order).toEqual(['a', 'b'])
    expect((await admin.backends(app)).length).toBe(2)
    await Promise.all([handleA.release(), handleB.release()])
  })

  it('an abort mid-wait cancels the statement on the server and keeps the connection for reuse', async () => {
    const holder = setup()
    const { locker, app } = setup({ max: 1 })
    const key = randomKey()
    const held = await holder.locker.acquire(key)
    const controller = new AbortController()
    const waiting = locker.acquire(key, { signal: controller.signal })
    await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
    const [pid] = await admin.waiting(app)
    controller.abort(new Error('stop'))
    await expect(waiting).rejects.toThrow('stop')
    await held.release()
    const next = await locker.acquire(key, { timeoutMs: 2_000 })
    expect(await holderPid(key)).toBe(pid)
    await next.release()
  })

  it('cancels from the moment a statement is issued neither fail it early nor wedge the connection', async () => {
    const { adapter } = setup()
    const conn = await adapter.connect({ onLost: () => {} })
    // postgres.js's own cancel() of a statement not yet sent rejects it at once, and leaves a connection
    // that is still opening stuck for good.
    const settled = conn.query('SELECT pg_sleep(30) IS NOT NULL AS slept', []).then(
      () => ({ error: undefined }),
      (error: unknown) => ({ error }),
    )
    // What the core does after an abort: cancel, and again with a pause, until the statement settles.
    let outcome: { error: unknown } | undefined
    while (outcome === undefined) {
      await conn.cancel!()
      outcome = await Promise.race([
        settled,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 10)),
      ])
    }
    // The server's own 57014 (a PostgresError), not one postgres.js made up before sending anything.
    expect(adapter.sqlState(outcome.error)).toBe('57014')
    expect(await conn.query('SELECT 1 AS one', [])).toEqual([{ one: 1 }])
    await conn.release({ destroy: false })
  })

  it('closes idle lock connections after idleTimeoutMs', async () => {
    const { locker, app } = setup({}, { idleTimeoutMs: 50 })
    await (await locker.acquire(randomKey())).release()
    await waitFor('the idle lock connection to close', async () => (await admin.backends(app)).length === 0)
  })

  it('by default keeps an idle lock connection past a pause of 1.5 s: the next lock runs on the same backend', async () => {
    const { locker, app } = setup()
    const first = randomKey()
    await (await locker.acquire(first)).release()
    const [idle] = await admin.backends(app)
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const second = randomKey()
    const held = await locker.acquire(second)
    expect(await holderPid(second)).toBe(idle!.pid)
    expect((await admin.backends(app)).length).toBe(1)
    await held.release()
  })

  it('close() ends idle lock connections at once, rejects queued and later connects', async () => {
    const { locker, adapter, app } = setup({ max: 1 }, { idleTimeoutMs: 60_000 })
    const held = await locker.acquire(randomKey())
    // A wait needs a lock connection of its own, and the only one holds `held`: it queues.
    const busy = randomKey()
    const blocker = await admin.hold(busy)
    const queued = locker.acquire(busy)
    await waitFor('the first lock to be held', async () => (await admin.heldBy(app)) === 1)
    const rejected = expect(queued).rejects.toThrow(/closed/)
    await adapter.close()
    await rejected
    await blocker.release()
    await held.release()
    await waitFor('no lock connection to remain', async () => (await admin.backends(app)).length === 0, 2_000)
    await expect(createLocker(adapter).acquire(randomKey())).rejects.toThrow(/closed/)
  })

  it('close() while a new lock connection opens rejects that connect and ends the connection', async () => {
    const proxy = await SilentProxy.start(url)
    onTestFinished(() => proxy.close())
    const app = appName('pjs')
    const sql = postgres(proxy.url, { max: 2, onnotice: () => {}, connection: { application_name: app } })
    const adapter = postgresjsAdapter(sql)
    onTestFinished(async () => {
      await adapter.close()
      await sql.end()
    })
    // The new connection's start-up is held up until the adapter is closed.
    proxy.silence()
    const connecting = adapter.connect({ onLost: () => {} })
    const rejected = expect(connecting).rejects.toThrow(/closed/)
    await new Promise((resolve) => setTimeout(resolve, 100))
    await adapter.close()
    proxy.resume()
    await rejected
    await waitFor('no lock connection to remain', async () => (await admin.backends(app)).length === 0, 5_000)
  })

  it('a new lock connection that opens and then answers nothing is given up after connect_timeout; its slot is free again', async () => {
    const proxy = await SilentProxy.start(url)
    onTestFinished(() => proxy.close())
    const app = appName('pjs')
    const sql = postgres(proxy.url, {
      max: 1,
      connect_timeout: 1,
      onnotice: () => {},
      connection: { application_name: app },
    })
    const adapter = postgresjsAdapter(sql)
    const locker = createLocker(adapter)
    onTestFinished(async () => {
      await locker.close()
      await adapter.close()
      await sql.end({ timeout: 0 })
    })
    // The start-up completes (postgres.js's own connect_timeout is then over); the first statement
    // goes unanswered, as in a partition right after the connection opened.
    proxy.silenceAfterStartup()
    const started = performance.now()
    const error = await locker.acquire(randomKey()).catch((e: unknown) => e)
    const elapsed = performance.now() - started
    expect(error).toMatchObject({ code: 'CONNECT_TIMEOUT' })
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect(elapsed).toBeLessThan(3_000)
    // The one slot (max: 1) was freed: with the network back, the next acquire gets a new connection.
    proxy.resume()
    const key = randomKey()
    const handle = await locker.acquire(key, { timeoutMs: 5_000 })
    expect((await admin.locks(key)).length).toBe(1)
    await handle.release()
  })

  it('leaves the app’s instance and its options untouched', async () => {
    const onclose = () => {}
    const { sql, locker } = setup({ onclose, transform: postgres.camel })
    const before = { ...sql.options }
    await (await locker.acquire(randomKey())).release()
    expect(sql.options).toEqual(before)
    // Nested state it shares with its own connections only: the lock connections must not write to it.
    const internals = sql.options as unknown as Record<string, unknown>
    expect(internals.parameters).toEqual({})
    expect(internals.shared).toEqual({ retries: 0, typeArrayMap: {} })
    expect(sql.options.onclose).toBe(onclose)
    expect(sql.options.max).toBe(2)
  })
})

describe('postgres.js adapter: transaction scope', () => {
  it('works with a camelCase transform on the app’s instance', async () => {
    const holder = setup()
    const { sql, locker, app } = setup({ transform: postgres.camel })
    const key = randomKey()
    const held = await holder.locker.acquire(key)
    await sql.begin(async (tx) => {
      await tx`SET LOCAL lock_timeout = '7s'`
      await expect(locker.transaction(tx).acquire(key, { timeoutMs: 50 })).rejects.toBeInstanceOf(
        LockTimeoutError,
      )
      await held.release()
      await locker.transaction(tx).acquire(key, { timeoutMs: 1_000 })
      expect(await tx`SELECT current_setting('lock_timeout') AS lock_timeout`).toEqual([
        { lockTimeout: '7s' },
      ])
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([app])
    })
    expect(await admin.locks(key)).toEqual([])
    const handle = await locker.acquire(key)
    await handle.release()
  })

  it('round trips in sql.begin (status unknown): SAVEPOINT, lock and RELEASE in one; the caller’s timeouts add the override', async () => {
    const { sql, locker, app } = setup()
    /** What the core sends on `tx`, a round trip each: its statements reduced to their first words or lock function. */
    const counted = (tx: PostgresSqlLike, sent: string[]): PostgresSqlLike => ({
      typed: tx.typed.bind(tx),
      unsafe(text, parameters, options) {
        const statements = text.split('; ').map((statement) => {
          const lock = /pg_(try_)?advisory_xact_lock/.exec(statement)?.[0]
          const setting = /set_config\('lock_timeout'/.test(statement) ? 'set_config' : undefined
          return lock ?? setting ?? statement.split(' ').slice(0, 2).join(' ')
        })
        sent.push(statements.join('; '))
        return tx.unsafe(text, parameters, options)
      },
    })
    const key = randomKey()
    const sent: string[] = []
    await sql.begin(async (tx) => {
      await locker.transaction(counted(tx, sent)).acquire(key)
      expect(sent.splice(0)).toEqual(['SAVEPOINT pglock_wait; pg_advisory_xact_lock; RELEASE SAVEPOINT'])
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([app])
      expect(await locker.transaction(counted(tx, sent)).tryAcquire(randomKey())).toBe(true)
      expect(sent.splice(0)).toEqual(['SAVEPOINT pglock_wait; pg_try_advisory_xact_lock; RELEASE SAVEPOINT'])
      // Held by a session of this locker: the try answers false in the same single round trip.
      const theirs = await locker.acquire(randomKey())
      expect(await locker.transaction(counted(tx, sent)).tryAcquire(theirs.key)).toBe(false)
      expect(sent.splice(0)).toHaveLength(1)
      await theirs.release()
      // The caller's own lock_timeout: the one-statement lock declines (NULL), the override route follows.
      await tx`SET LOCAL lock_timeout = '7s'`
      const other = randomKey()
      await locker.transaction(counted(tx, sent)).acquire(other)
      expect(sent.splice(0)).toEqual([
        'SAVEPOINT pglock_wait; pg_advisory_xact_lock; RELEASE SAVEPOINT',
        'SAVEPOINT pglock_wait',
        'set_config',
        'pg_advisory_xact_lock',
        'set_config',
        'RELEASE SAVEPOINT',
      ])
      expect(await tx`SELECT current_setting('lock_timeout') AS v`).toEqual([{ v: '7s' }])
      expect((await admin.locks(other)).map((l) => l.applicationName)).toEqual([app])
    })
    expect(await admin.locks(key)).toEqual([])
  })

  it('a deadlock victim in sql.begin (one-round-trip lock) keeps its transaction: the savepoint is undone, it commits', async () => {
    const { sql, locker, app } = setup({ max: 3 })
    const [k1, k2] = [randomKey(), randomKey()]
    let firstHeld = 0
    let bothHeld!: () => void
    const barrier = new Promise<void>((resolve) => {
      bothHeld = resolve
    })
    const committed: string[] = []
    let victims = 0
    const run = (name: string, first: LockKey, second: LockKey) =>
      sql.begin(async (tx) => {
        await locker.transaction(tx).acquire(first)
        if (++firstHeld === 2) bothHeld()
        await barrier
        try {
          await locker.transaction(tx).acquire(second)
        } catch (error) {
          victims++
          expect(error).toBeInstanceOf(DeadlockError)
          // Still in its transaction, still holding its first lock, and able to go on.
          expect(await tx`SELECT 1 AS one`).toEqual([{ one: 1 }])
          // (The other transaction waits for it, until this one commits.)
          const granted = (await admin.locks(first)).filter((l) => l.granted)
          expect(granted.map((l) => l.applicationName)).toEqual([app])
        }
        await tx`SELECT 2 AS two`
        committed.push(name)
      })
    await Promise.all([run('a', k1, k2), run('b', k2, k1)])
    // The server picks exactly one victim; the test is about that one.
    expect(victims).toBe(1)
    expect(committed.sort()).toEqual(['a', 'b'])
    expect(await admin.locks(k1)).toEqual([])
    expect(await admin.locks(k2)).toEqual([])
  })

  it('refuses the instance itself without sending anything', async () => {
    const { sql, locker, app } = setup()
    await expect(locker.transaction(sql).acquire(randomKey())).rejects.toBeInstanceOf(NotInTransactionError)
    expect(await admin.backends(app)).toEqual([])
  })

  it('refuses sql.begin’s sql used after its transaction ended, rather than locking for nothing', async () => {
    const { sql, locker } = setup()
    const key = randomKey()
    let finished: PostgresSqlLike | undefined
    await sql.begin(async (tx) => {
      finished = tx
      await locker.transaction(tx).acquire(key)
    })
    await expect(locker.transaction(finished!).acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    await expect(locker.transaction(finished!).tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
    expect(await admin.locks(key)).toEqual([])
  })
})

describe('postgres.js adapter: inputs and loading', () => {
  it('rejects things that are not a postgres.js instance or transaction', async () => {
    const { sql, locker } = setup()
    expect(() => postgresjsAdapter({} as never)).toThrow(TypeError)
    const reserved = await sql.reserve()
    expect(() => postgresjsAdapter(reserved as never)).toThrow(TypeError)
    reserved.release()
    expect(() => postgresjsAdapter(sql, { idleTimeoutMs: -1 })).toThrow(InvalidOptionsError)
    await expect(locker.transaction({} as never).acquire(randomKey())).rejects.toBeInstanceOf(TypeError)
  })

  it('loads postgres only when a lock connection is first needed', async () => {
    const { sql } = setup()
    vi.resetModules()
    vi.doMock('postgres', () => {
      throw new Error('postgres is not installed')
    })
    onTestFinished(() => {
      vi.doUnmock('postgres')
    })
    const { postgresjsAdapter: fresh } = await import('../src/index.js')
    const locker = createLocker(fresh(sql))
    const key = randomKey()
    await sql.begin(async (tx) => {
      expect(await locker.transaction(tx).tryAcquire(key)).toBe(true)
    })
    const error = await locker.acquire(key).catch((e: unknown) => e as Error)
    expect(String((error as Error).cause ?? error)).toMatch(/not installed/)
  })
})
