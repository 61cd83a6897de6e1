import {
  createLocker,
  DeadlockError,
  type Locker,
  LockerClosedError,
  type LockerOptions,
  type LockHandle,
  type LockKey,
  LockLostError,
  LockTimeoutError,
  lockKey,
  NotInTransactionError,
} from '@pglock/core'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest'
import { Admin, appName, randomKey, randomPairKey, waitFor } from './admin.js'
import type { AdapterInstance, ConformanceOptions } from './harness.js'
import { SilentProxy } from './silent-proxy.js'
import './provided-context.js'

interface Setup<Tx> {
  readonly app: string
  readonly instance: AdapterInstance<Tx>
  readonly locker: Locker<Tx>
}

const elapsedSince = (t0: number) => performance.now() - t0
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

async function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return (await Promise.allSettled([promise]))[0] as PromiseSettledResult<T>
}

/**
 * The behavioural suite every adapter runs: the same tests, on a real server, checked against the
 * server's own view (`pg_locks`, `pg_stat_activity`) through a separate admin connection.
 */
export function runAdapterConformance<Tx>(options: ConformanceOptions<Tx>): void {
  const { name, harness, limits = {}, raceIterations = 300 } = options
  const url = inject('pglockDatabaseUrl')
  let admin: Admin

  beforeAll(async () => {
    admin = await Admin.connect(url)
  })
  afterAll(async () => {
    // Unset when an earlier beforeAll (a pooler's start, say) failed: that failure is the one to report.
    await (admin as Admin | undefined)?.close()
  })

  /** A fresh app client, adapter and locker, closed when the test ends. */
  async function setup(
    opts: {
      max?: number
      settings?: Record<string, string>
      lockerOptions?: LockerOptions
      url?: string
    } = {},
  ): Promise<Setup<Tx>> {
    const app = appName(name)
    const instance = await harness.create({
      url: opts.url ?? url,
      max: opts.max ?? 4,
      applicationName: app,
      ...(opts.settings === undefined ? {} : { settings: opts.settings }),
    })
    const locker = createLocker(instance.adapter, opts.lockerOptions)
    onTestFinished(async () => {
      await locker.close()
      await instance.close()
    })
    return { app, instance, locker }
  }

  /** The test's title, carrying the reason when a limit of the adapter skips it. */
  const titled = (title: string, reason: string | undefined) =>
    reason === undefined ? title : `${title} [skipped: ${reason}]`
  /**
   * A URL for a throw-away login role whose sessions start with `settings` (`ALTER ROLE ... SET`), as
   * a DBA sets idle killers; works whatever session settings a driver can pass itself.
   */
  async function roleUrl(settings: Record<string, string>): Promise<string> {
    const role = `pglock_${appName('r').slice(-8)}`
    const password = appName('p')
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`)
    for (const [setting, value] of Object.entries(settings)) {
      await admin.query(`ALTER ROLE ${role} SET ${setting} = '${value}'`)
    }
    onTestFinished(async () => {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role])
      // The role goes with the test database; a session still closing may keep it a moment longer.
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {})
    })
    const roleUrl = new URL(url)
    roleUrl.username = role
    roleUrl.password = password
    return roleUrl.toString()
  }

  const cancelReason = limits.noSessionCancel
  const withCancel = (title: string) => titled(title, cancelReason)
  const txCancelReason = limits.noTransactionCancel
  const lossReason = limits.lossNoticedOnNextUse
  const sessionReason = limits.noSessionLocks
  /** A describe block of session-scope tests, skipped (with the reason in its name) where they cannot work. */
  const sessionDescribe = (title: string, body: () => void) =>
    describe.skipIf(sessionReason !== undefined)(titled(title, sessionReason), body)

  sessionDescribe(`${name}: session locks`, () => {
    it.each([
      ['a bigint key', () => randomKey()],
      ['a pair key', () => randomPairKey()],
      ['a string key', () => `conformance:${Math.random()}`],
    ] as const)('acquire and release show in pg_locks with the key id, for %s', async (_, makeInput) => {
      const { locker, app } = await setup()
      const input = makeInput()
      const key = lockKey(input)
      const handle = await locker.acquire(input)
      expect(handle.held).toBe(true)
      expect(handle.key).toEqual(key)
      expect(handle.shared).toBe(false)
      expect(await admin.locks(key)).toEqual([
        { pid: expect.any(Number), mode: 'ExclusiveLock', granted: true, applicationName: app },
      ])
      await handle.release()
      expect(handle.held).toBe(false)
      expect(handle.signal.aborted).toBe(false)
      expect(await admin.locks(key)).toEqual([])
    })

    it('exclusive excludes exclusive across lockers', async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      const held = await a.locker.acquire(key)
      expect(await b.locker.tryAcquire(key)).toBeNull()
      await expect(b.locker.acquire(key, { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeoutError)
      await held.release()
      const next = await b.locker.tryAcquire(key)
      expect(next?.held).toBe(true)
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([b.app])
    })

    it('shared is compatible with shared, and excludes exclusive both ways', async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      const sharedA = await a.locker.acquire(key, { shared: true })
      const sharedB = await b.locker.acquire(key, { shared: true, timeoutMs: 1_000 })
      expect(sharedB.shared).toBe(true)
      const rows = await admin.locks(key)
      expect(rows).toHaveLength(2)
      expect(rows.every((r) => r.mode === 'ShareLock' && r.granted)).toBe(true)
      expect(await b.locker.tryAcquire(key)).toBeNull()
      await sharedA.release()
      await sharedB.release()
      const exclusive = await a.locker.acquire(key)
      expect(await b.locker.tryAcquire(key, { shared: true })).toBeNull()
      await expect(b.locker.acquire(key, { shared: true, timeoutMs: 50 })).rejects.toBeInstanceOf(
        LockTimeoutError,
      )
      await exclusive.release()
      expect(await admin.locks(key)).toEqual([])
    })

    it('is not re-entrant: a second acquire by the same locker waits like anyone else', async () => {
      const { locker, app } = await setup()
      const key = randomKey()
      const first = await locker.acquire(key)
      expect(await locker.tryAcquire(key)).toBeNull()
      await expect(locker.acquire(key, { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeoutError)
      let secondSettled = false
      const second = locker.acquire(key).finally(() => {
        secondSettled = true
      })
      await waitFor(
        'the second acquire to wait on the server',
        async () => (await admin.waiting(app)).length === 1,
      )
      expect(secondSettled).toBe(false)
      expect(first.held).toBe(true)
      await first.release()
      const handle = await second
      expect(handle.held).toBe(true)
      const rows = await admin.locks(key)
      expect(rows).toEqual([
        { pid: expect.any(Number), mode: 'ExclusiveLock', granted: true, applicationName: app },
      ])
      await handle.release()
      expect(await admin.locks(key)).toEqual([])
    })

    it('a release that hands the lock to another acquire of the same locker resolves once that acquire holds it', async () => {
      const { locker, app } = await setup()
      // The grant reaches the client a moment after the unlock's answer. A host stalled for longer than
      // the 1 ms the release waits for it lets the release go first: up to three attempts, each on a
      // key of its own (a key whose release waited in vain is not held back for a while).
      let order: string[] = []
      const keys: LockKey[] = []
      for (let attempt = 0; attempt < 3 && order[0] !== 'granted'; attempt++) {
        order = []
        const key = randomKey()
        keys.push(key)
        const first = await locker.acquire(key)
        const second = locker.acquire(key).then((handle) => {
          order.push('granted')
          return handle
        })
        await waitFor(
          'the second acquire to wait on the server',
          async () => (await admin.waiting(app)).length === 1,
        )
        await first.release()
        order.push('released')
        const handle = await second
        expect(await admin.locks(key)).toEqual([
          { pid: expect.any(Number), mode: 'ExclusiveLock', granted: true, applicationName: app },
        ])
        await handle.release()
      }
      expect(order).toEqual(['granted', 'released'])
      for (const key of keys) expect(await admin.locks(key)).toEqual([])
    })

    it('a release whose lock goes to another process resolves within milliseconds, though an acquire of the same locker waits for it', async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      const held = await a.locker.acquire(key)
      const theirs = b.locker.acquire(key)
      await waitFor('b to wait on the server', async () => (await admin.waiting(b.app)).length === 1)
      const mine = a.locker.acquire(key)
      await waitFor(
        'a second acquire to wait behind it',
        async () => (await admin.waiting(a.app)).length === 1,
      )
      const t0 = performance.now()
      await held.release()
      expect(elapsedSince(t0)).toBeLessThan(250)
      const handle = await theirs
      expect((await admin.locks(key)).map((l) => [l.applicationName, l.granted])).toEqual([
        [b.app, true],
        [a.app, false],
      ])
      await handle.release()
      await (await mine).release()
      expect(await admin.locks(key)).toEqual([])
    })

    it('tryAcquire returns null under contention and leaves nothing behind', async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      const held = await a.locker.acquire(key)
      expect(await b.locker.tryAcquire(key)).toBeNull()
      expect(await b.locker.tryAcquire(key, { shared: true })).toBeNull()
      expect(await admin.heldBy(b.app)).toBe(0)
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([a.app])
      await held.release()
    })

    it('tryWithLock runs fn only when the lock is free', async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      const result = await a.locker.tryWithLock(key, async (lock) => {
        expect(lock.held).toBe(true)
        let ran = false
        const other = await b.locker.tryWithLock(key, () => {
          ran = true
        })
        expect(other).toEqual({ acquired: false })
        expect(ran).toBe(false)
        return 42
      })
      expect(result).toEqual({ acquired: true, value: 42 })
      expect(await admin.locks(key)).toEqual([])
    })

    it('timeoutMs rejects with LockTimeoutError within a tolerance and leaves nothing held or waiting', async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      const held = await a.locker.acquire(key)
      const t0 = performance.now()
      const error = await b.locker.acquire(key, { timeoutMs: 300 }).catch((e: unknown) => e)
      const elapsed = elapsedSince(t0)
      expect(error).toBeInstanceOf(LockTimeoutError)
      expect(error).toMatchObject({ code: 'LOCK_TIMEOUT', name: 'LockTimeoutError', timeoutMs: 300, key })
      expect(elapsed).toBeGreaterThanOrEqual(295)
      expect(elapsed).toBeLessThan(1_500)
      expect(await admin.waiting(b.app)).toEqual([])
      expect(await admin.heldBy(b.app)).toBe(0)
      expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([a.app])
      await held.release()
    })

    it('timeoutMs: 0 takes a free lock and fails at once on a held one', async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      const handle = await a.locker.acquire(key, { timeoutMs: 0 })
      expect(handle.held).toBe(true)
      const t0 = performance.now()
      await expect(b.locker.acquire(key, { timeoutMs: 0 })).rejects.toMatchObject({
        code: 'LOCK_TIMEOUT',
        timeoutMs: 0,
      })
      expect(elapsedSince(t0)).toBeLessThan(1_000)
      expect(await admin.heldBy(b.app)).toBe(0)
      await handle.release()
    })

    it('two handles of one locker on the same key never hold it in conflicting modes', async () => {
      const { locker, app } = await setup()
      const key = randomKey()
      const shared1 = await locker.acquire(key, { shared: true })
      const shared2 = await locker.acquire(key, { shared: true, timeoutMs: 1_000 })
      expect((await admin.locks(key)).filter((l) => l.granted)).toHaveLength(2)
      const exclusive = locker.acquire(key)
      await waitFor('the exclusive acquire to wait', async () => (await admin.waiting(app)).length === 1)
      await shared1.release()
      expect((await admin.waiting(app)).length).toBe(1)
      await shared2.release()
      const handle = await exclusive
      expect(await admin.locks(key)).toEqual([
        { pid: expect.any(Number), mode: 'ExclusiveLock', granted: true, applicationName: app },
      ])
      await handle.release()
    })
  })

  sessionDescribe(`${name}: aborts`, () => {
    it('an already aborted signal rejects with its reason before anything is sent', async () => {
      const { locker, app } = await setup()
      const key = randomKey()
      const reason = new Error('stop')
      const signal = AbortSignal.abort(reason)
      await expect(locker.acquire(key, { signal })).rejects.toBe(reason)
      await expect(locker.tryAcquire(key, { signal })).rejects.toBe(reason)
      await expect(locker.withLock(key, () => 1, { signal })).rejects.toBe(reason)
      expect(await admin.backends(app)).toEqual([])
    })

    it.skipIf(cancelReason !== undefined)(
      withCancel('an abort mid-wait cancels the wait on the server and rejects with the reason'),
      async () => {
        const a = await setup()
        const b = await setup()
        const key = randomKey()
        const held = await a.locker.acquire(key)
        const controller = new AbortController()
        const waiting = b.locker.acquire(key, { signal: controller.signal })
        await waitFor('the wait to reach the server', async () => (await admin.waiting(b.app)).length === 1)
        const reason = new Error('user gave up')
        controller.abort(reason)
        await expect(waiting).rejects.toBe(reason)
        expect(await admin.waiting(b.app)).toEqual([])
        expect(await admin.heldBy(b.app)).toBe(0)
        await held.release()
        const next = await b.locker.acquire(key, { timeoutMs: 2_000 })
        expect(next.held).toBe(true)
        await next.release()
      },
    )
  })

  sessionDescribe(`${name}: aborts at any moment`, () => {
    it.skipIf(cancelReason !== undefined)(
      withCancel(
        'an abort at any moment of a wait ends it promptly and leaves nothing waiting (150 iterations)',
      ),
      async () => {
        const a = await setup()
        const b = await setup({ max: 1 })
        const key = randomKey()
        const held = await a.locker.acquire(key)
        let slowest = 0
        for (let i = 0; i < 150; i++) {
          const controller = new AbortController()
          const reason = new Error(`abort ${i}`)
          const waiting = settle(b.locker.acquire(key, { signal: controller.signal }))
          // From "before the statement reaches the server" to "well into the wait".
          if (i % 3 === 0) await Promise.resolve()
          else await sleep(i % 4)
          const t0 = performance.now()
          controller.abort(reason)
          const outcome = await waiting
          slowest = Math.max(slowest, elapsedSince(t0))
          expect(outcome).toEqual({ status: 'rejected', reason })
          await waitFor(
            'no backend of b to wait',
            async () => (await admin.waiting(b.app)).length === 0,
            2_000,
          )
        }
        expect(slowest).toBeLessThan(2_000)
        expect(await admin.heldBy(b.app)).toBe(0)
        await held.release()
      },
      60_000,
    )
  })

  sessionDescribe(`${name}: the grant race`, () => {
    it(`a timed wait racing a release never leaves the lock held (${raceIterations} iterations)`, async () => {
      const a = await setup()
      const b = await setup()
      const key = randomKey()
      let acquired = 0
      let timedOut = 0
      for (let i = 0; i < raceIterations; i++) {
        const held = await a.locker.acquire(key)
        const waiting = settle(b.locker.acquire(key, { timeoutMs: 15 }))
        await sleep(10 + (i % 11))
        await held.release()
        const outcome = await waiting
        if (outcome.status === 'fulfilled') {
          acquired++
          await outcome.value.release()
        } else {
          expect(outcome.reason).toBeInstanceOf(LockTimeoutError)
          timedOut++
        }
        expect(await admin.locks(key)).toEqual([])
      }
      expect(acquired + timedOut).toBe(raceIterations)
      expect(acquired).toBeGreaterThan(0)
      expect(timedOut).toBeGreaterThan(0)
      expect(await admin.heldBy(b.app)).toBe(0)
    }, 120_000)

    it.skipIf(cancelReason !== undefined)(
      withCancel(`an abort racing a release never leaves the lock held (${raceIterations} iterations)`),
      async () => {
        const a = await setup()
        const b = await setup()
        const key = randomKey()
        let acquired = 0
        let aborted = 0
        for (let i = 0; i < raceIterations; i++) {
          const held = await a.locker.acquire(key)
          const controller = new AbortController()
          const reason = new Error(`abort ${i}`)
          const waiting = settle(b.locker.acquire(key, { signal: controller.signal }))
          await sleep(2 + (i % 5))
          const releasing = held.release()
          controller.abort(reason)
          await releasing
          const outcome = await waiting
          if (outcome.status === 'fulfilled') {
            acquired++
            await outcome.value.release()
          } else {
            expect(outcome.reason).toBe(reason)
            aborted++
          }
          expect(await admin.locks(key)).toEqual([])
          expect(await admin.waiting(b.app)).toEqual([])
        }
        expect(acquired + aborted).toBe(raceIterations)
        expect(aborted).toBeGreaterThan(0)
      },
      120_000,
    )
  })

  sessionDescribe(`${name}: lost locks`, () => {
    it.skipIf(lossReason !== undefined)(
      titled(
        'terminating the holder aborts handle.signal with LockLostError; the process lives on',
        lossReason,
      ),
      async () => {
        const { locker } = await setup()
        const key = randomKey()
        const handle = await locker.acquire(key)
        const [row] = await admin.locks(key)
        await admin.terminate(row!.pid)
        await waitFor('the handle to report the loss', () => handle.signal.aborted)
        expect(handle.held).toBe(false)
        expect(handle.signal.reason).toBeInstanceOf(LockLostError)
        expect(handle.signal.reason).toMatchObject({ code: 'LOCK_LOST', name: 'LockLostError', key })
        await handle.release()
        const next = await locker.acquire(key, { timeoutMs: 2_000 })
        const rows = await admin.locks(key)
        expect(rows).toHaveLength(1)
        expect(rows[0]!.pid).not.toBe(row!.pid)
        await next.release()
      },
    )

    it('a terminated holder is reported lost on its next use at the latest, and the locker recovers', async () => {
      const { locker } = await setup()
      const key = randomKey()
      const handle = await locker.acquire(key)
      const [row] = await admin.locks(key)
      await admin.terminate(row!.pid)
      await waitFor('the backend to end', async () => (await admin.locks(key)).length === 0)
      await handle.release()
      expect(handle.held).toBe(false)
      expect(handle.signal.reason).toBeInstanceOf(LockLostError)
      const next = await locker.acquire(key, { timeoutMs: 2_000 })
      expect((await admin.locks(key)).map((l) => l.granted)).toEqual([true])
      await next.release()
      expect(await admin.locks(key)).toEqual([])
    })

    it('withLock rejects with LockLostError when the lock was lost while fn ran, even if fn resolved', async () => {
      const { locker } = await setup()
      const key = randomKey()
      const result = locker.withLock(key, async () => {
        const [row] = await admin.locks(key)
        await admin.terminate(row!.pid)
        await waitFor('the backend to end', async () => (await admin.locks(key)).length === 0)
        return 'done'
      })
      await expect(result).rejects.toBeInstanceOf(LockLostError)
      expect(await admin.locks(key)).toEqual([])
    })
  })

  sessionDescribe(`${name}: a server gone silent`, () => {
    /** How long the lockers of these tests let a silent server be (abandonAfterMs). */
    const GRACE = 300

    /** A locker whose connections go through a relay that can go silent (a network partition). */
    async function silentSetup(
      lockerOptions: LockerOptions = {},
    ): Promise<Setup<Tx> & { readonly proxy: SilentProxy }> {
      const proxy = await SilentProxy.start(url)
      onTestFinished(() => proxy.close())
      const lockerSetup = await setup({
        url: proxy.url,
        lockerOptions: { abandonAfterMs: GRACE, ...lockerOptions },
      })
      return { proxy, ...lockerSetup }
    }

    /** The partition ends with a reset: the backends behind `proxy` go, and their locks on `keys` with them. */
    async function resetAndExpectFreed(proxy: SilentProxy, ...keys: LockKey[]): Promise<void> {
      await proxy.close()
      await waitFor('the locks to be freed', async () => {
        for (const key of keys) if ((await admin.locks(key)).length > 0) return false
        return true
      })
    }

    it('a timed wait rejects with LockTimeoutError abandonAfterMs past its deadline; the lock granted to the silent backend is freed once its connection ends', async () => {
      const { proxy, locker, app } = await silentSetup()
      const key = randomKey()
      const held = await admin.hold(key)
      const t0 = performance.now()
      const waiting = settle(locker.acquire(key, { timeoutMs: 2_000 }))
      await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
      proxy.silence()
      await held.release()
      // The server grants the lock to the waiting backend, whose reply never arrives.
      await waitFor('the grant', async () =>
        (await admin.locks(key)).some((lock) => lock.granted && lock.applicationName === app),
      )
      const outcome = await waiting
      const elapsed = elapsedSince(t0)
      expect(outcome.status).toBe('rejected')
      const error = (outcome as PromiseRejectedResult).reason as Error
      expect(error).toBeInstanceOf(LockTimeoutError)
      expect(String((error.cause as Error | undefined)?.message)).toMatch(/did not answer/)
      expect(elapsed).toBeGreaterThan(2_000 + GRACE - 50)
      expect(elapsed).toBeLessThan(2_000 + GRACE + 3_000)
      await resetAndExpectFreed(proxy, key)
    })

    it('an aborted wait rejects with signal.reason abandonAfterMs after the abort, though neither the wait nor its cancel is answered', async () => {
      const { proxy, locker, app } = await silentSetup()
      const key = randomKey()
      const held = await admin.hold(key)
      const controller = new AbortController()
      const waiting = settle(locker.acquire(key, { signal: controller.signal }))
      await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
      proxy.silence()
      const reason = new Error('stop')
      const t0 = performance.now()
      controller.abort(reason)
      const outcome = await waiting
      expect(outcome).toEqual({ status: 'rejected', reason })
      const elapsed = elapsedSince(t0)
      // Without a cancel, the wait is given up on at once.
      if (cancelReason === undefined) expect(elapsed).toBeGreaterThan(GRACE - 50)
      expect(elapsed).toBeLessThan(GRACE + 3_000)
      // The backend still waits (a waiting backend does not read its socket); once granted, it finds
      // its connection gone and ends, freeing the lock.
      await proxy.close()
      await held.release()
      await waitFor('the lock to be freed', async () => (await admin.locks(key)).length === 0)
    })

    it('tries on a shared connection gone silent, aborted or not, end once it has answered nothing for abandonAfterMs: the locks held there are reported lost, and freed once the connection ends', async () => {
      const { proxy, locker } = await silentSetup()
      const [a, b, c] = [randomKey(), randomKey(), randomKey()]
      const holding = await locker.acquire(a)
      proxy.silence()
      const t0 = performance.now()
      const controller = new AbortController()
      // Both try on the connection that holds a (a timed acquire tries there first too).
      const trying = settle(locker.tryAcquire(b, { signal: controller.signal }))
      const timed = settle(locker.acquire(c, { timeoutMs: 100 }))
      await sleep(50)
      const reason = new Error('stop')
      controller.abort(reason)
      // The abort lets the try finish (a cancel would hit what runs next there), until the watch gives up.
      expect(await trying).toEqual({ status: 'rejected', reason })
      const timedOut = await timed
      const elapsed = elapsedSince(t0)
      expect(timedOut.status).toBe('rejected')
      expect((timedOut as PromiseRejectedResult).reason).toBeInstanceOf(LockTimeoutError)
      expect(elapsed).toBeGreaterThan(GRACE - 50)
      expect(elapsed).toBeLessThan(1.25 * GRACE + 2_000)
      expect(holding.held).toBe(false)
      expect(holding.signal.reason).toBeInstanceOf(LockLostError)
      expect(String((holding.signal.reason as Error).cause)).toMatch(/did not answer a try/)
      // Nothing was unlocked: the server still holds a for the silent backend, until it ends.
      expect(await admin.locks(a)).toHaveLength(1)
      await resetAndExpectFreed(proxy, a, b, c)
    })

    it('an acquire whose try meets a silent backend tries again on another connection abandonAfterMs later (here with neither timeout nor signal); the locks on the silent one are reported lost', async () => {
      const { proxy, locker, app } = await silentSetup()
      const [a, c] = [randomKey(), randomKey()]
      const holding = await locker.acquire(a)
      const silentPid = (await admin.locks(a))[0]?.pid
      // That backend stops; the server answers new connections.
      proxy.silenceExisting()
      const t0 = performance.now()
      const next = await locker.acquire(c)
      const elapsed = elapsedSince(t0)
      expect(elapsed).toBeGreaterThan(GRACE - 50)
      expect(elapsed).toBeLessThan(1.25 * GRACE + 2_000)
      const [holder] = await admin.locks(c)
      expect(holder?.applicationName).toBe(app)
      expect(holder?.pid).not.toBe(silentPid)
      expect(holding.held).toBe(false)
      expect(holding.signal.reason).toBeInstanceOf(LockLostError)
      expect(String((holding.signal.reason as Error).cause)).toMatch(/did not answer a try/)
      await next.release()
      expect(await admin.locks(c)).toEqual([])
      await resetAndExpectFreed(proxy, a)
    })

    it('a connection slow to open is not taken for a silent one: abandonAfterMs counts from its first statement', async () => {
      const { proxy, locker, app } = await silentSetup()
      const key = randomKey()
      // New connections are held up for 3.5 × abandonAfterMs (a database waking up, a slow TLS hop):
      // longer than a try and its one retry elsewhere would be let wait.
      proxy.silence()
      const t0 = performance.now()
      const acquiring = settle(locker.acquire(key))
      await sleep(3.5 * GRACE)
      proxy.resume()
      const outcome = await acquiring
      expect(outcome.status).toBe('fulfilled')
      expect(elapsedSince(t0)).toBeGreaterThan(3.5 * GRACE - 50)
      const handle = (outcome as PromiseFulfilledResult<LockHandle>).value
      expect(handle.held).toBe(true)
      expect((await admin.locks(key)).map((lock) => lock.applicationName)).toEqual([app])
      await handle.release()
      expect(await admin.locks(key)).toEqual([])
    })

    it('with keepAliveMs, the locks on a connection whose server went silent are reported lost once a statement stayed unanswered for abandonAfterMs, and freed when the connection ends', async () => {
      const { proxy, locker } = await silentSetup({ keepAliveMs: 100 })
      const [a, b] = [randomKey(), randomKey()]
      const handles = [await locker.acquire(a), await locker.acquire(b)]
      proxy.silence()
      const t0 = performance.now()
      await waitFor('the loss to be reported', () => handles.every((handle) => handle.signal.aborted))
      expect(elapsedSince(t0)).toBeGreaterThan(GRACE - 50)
      for (const handle of handles) {
        expect(handle.held).toBe(false)
        expect(handle.signal.reason).toBeInstanceOf(LockLostError)
        expect(String((handle.signal.reason as Error).cause)).toMatch(/did not answer a keep-alive/)
        await handle.release()
      }
      await resetAndExpectFreed(proxy, a, b)
    })

    it('a release whose unlock goes unanswered settles abandonAfterMs later: the locks on that connection are reported lost, and the server frees them once the connection ends', async () => {
      const { proxy, locker } = await silentSetup()
      const [a, b] = [randomKey(), randomKey()]
      // Both on one connection (b's try goes where a is held).
      const first = await locker.acquire(a)
      const second = await locker.acquire(b)
      expect((await admin.locks(a))[0]?.pid).toBe((await admin.locks(b))[0]?.pid)
      proxy.silence()
      const t0 = performance.now()
      await first.release()
      const elapsed = elapsedSince(t0)
      expect(elapsed).toBeGreaterThan(GRACE - 50)
      // Not waiting for the connection's end either (postgres.js ends it gracefully: 5 s on a silent server).
      expect(elapsed).toBeLessThan(1.25 * GRACE + 2_000)
      for (const handle of [first, second]) {
        expect(handle.held).toBe(false)
        expect(handle.signal.reason).toBeInstanceOf(LockLostError)
        expect(String((handle.signal.reason as Error).cause)).toMatch(/did not answer the unlock/)
      }
      // Already lost: resolves at once.
      await second.release()
      // Nothing was unlocked: the server still holds both for the silent backend, until it ends.
      expect((await admin.locks(a)).length + (await admin.locks(b)).length).toBe(2)
      await resetAndExpectFreed(proxy, a, b)
    })

    it('a release sent while an earlier unlock on its connection goes unanswered settles when that one is given up on', async () => {
      const abandonAfterMs = 1_000
      const { proxy, locker } = await silentSetup({ abandonAfterMs })
      const [a, b] = [randomKey(), randomKey()]
      const first = await locker.acquire(a)
      const second = await locker.acquire(b)
      proxy.silence()
      const t0 = performance.now()
      const firstSettled = first.release().then(() => elapsedSince(t0))
      await sleep(0.9 * abandonAfterMs)
      const secondSettled = second.release().then(() => elapsedSince(t0))
      const [firstAt, secondAt] = await Promise.all([firstSettled, secondSettled])
      // With the first (a quarter of abandonAfterMs later at most), not abandonAfterMs after it was sent.
      expect(firstAt).toBeGreaterThan(abandonAfterMs - 50)
      expect(secondAt - firstAt).toBeLessThan(0.45 * abandonAfterMs)
      for (const handle of [first, second]) {
        expect(handle.signal.reason).toBeInstanceOf(LockLostError)
        expect(String((handle.signal.reason as Error).cause)).toMatch(/did not answer the unlock/)
      }
      await resetAndExpectFreed(proxy, a, b)
    })

    it('a connection that keeps answering is not given up on, however long its queue of unlocks takes', async () => {
      const abandonAfterMs = 80
      const { locker, app } = await setup({ lockerOptions: { abandonAfterMs } })
      // Acquired one after another: all on one connection, whose unlocks then run one at a time.
      const handles: LockHandle[] = []
      for (let i = 0; i < 1_500; i++) handles.push(await locker.acquire(randomKey()))
      expect((await admin.holders(app)).map((holder) => holder.locks)).toEqual([1_500])
      const t0 = performance.now()
      await Promise.all(handles.map((handle) => handle.release()))
      // The queue outlasted abandonAfterMs (else this proves nothing), and no lock was reported lost.
      expect(elapsedSince(t0)).toBeGreaterThan(1.25 * abandonAfterMs)
      expect(handles.filter((handle) => handle.signal.aborted)).toEqual([])
      expect(await admin.heldBy(app)).toBe(0)
    })

    it('withLock rejects with LockLostError abandonAfterMs after fn returned when the unlock goes unanswered', async () => {
      const { proxy, locker } = await silentSetup()
      const key = randomKey()
      const t0 = performance.now()
      const outcome = await settle(
        locker.withLock(key, () => {
          proxy.silence()
          return 'done'
        }),
      )
      expect(outcome.status).toBe('rejected')
      const error = (outcome as PromiseRejectedResult).reason as Error
      expect(error).toBeInstanceOf(LockLostError)
      expect(String(error.cause)).toMatch(/did not answer the unlock/)
      expect(elapsedSince(t0)).toBeGreaterThan(GRACE - 50)
      expect(elapsedSince(t0)).toBeLessThan(1.25 * GRACE + 2_000)
      await resetAndExpectFreed(proxy, key)
    })

    it('close() settles abandonAfterMs after the server went silent: held locks are reported lost, waits reject with LockerClosedError, and the server frees everything once the connections end', async () => {
      const { proxy, locker, app } = await silentSetup()
      const [a, b] = [randomKey(), randomKey()]
      const held = await admin.hold(b)
      const holding = await locker.acquire(a)
      const waiting = settle(locker.acquire(b))
      await waitFor('the wait to reach the server', async () => (await admin.waiting(app)).length === 1)
      proxy.silence()
      const t0 = performance.now()
      await locker.close()
      expect(elapsedSince(t0)).toBeLessThan(2 * GRACE + 3_000)
      expect(holding.held).toBe(false)
      expect(holding.signal.reason).toBeInstanceOf(LockLostError)
      const outcome = await waiting
      expect(outcome.status).toBe('rejected')
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(LockerClosedError)
      await proxy.close()
      await waitFor('the lock to be freed', async () => (await admin.locks(a)).length === 0)
      await held.release()
      await waitFor('the wait to end', async () => (await admin.locks(b)).length === 0)
    })
  })

  sessionDescribe(`${name}: release and close`, () => {
    it('withLock returns fn’s value, and releases when fn throws (fn’s error wins)', async () => {
      const { locker } = await setup()
      const key = randomKey()
      expect(await locker.withLock(key, async (lock) => (lock.held ? 'ok' : 'not held'))).toBe('ok')
      expect(await admin.locks(key)).toEqual([])
      const boom = new Error('boom')
      await expect(
        locker.withLock(key, async () => {
          expect((await admin.locks(key)).length).toBe(1)
          throw boom
        }),
      ).rejects.toBe(boom)
      expect(await admin.locks(key)).toEqual([])
    })

    it('release is idempotent, and Symbol.asyncDispose releases', async () => {
      const { locker } = await setup()
      const key = randomKey()
      const handle = await locker.acquire(key)
      await Promise.all([handle.release(), handle.release()])
      await handle.release()
      expect(handle.held).toBe(false)
      expect(await admin.locks(key)).toEqual([])
      const disposable: LockHandle = await locker.acquire(key)
      await disposable[Symbol.asyncDispose]()
      expect(disposable.held).toBe(false)
      expect(await admin.locks(key)).toEqual([])
    })

    it('close() releases every lock, rejects pending waits with LockerClosedError, and refuses new work', async () => {
      const a = await setup()
      const b = await setup()
      const [k1, k2, k3] = [randomKey(), randomKey(), randomKey()]
      const h1 = await b.locker.acquire(k1)
      const h2 = await b.locker.acquire(k2, { shared: true })
      const blocker = await a.locker.acquire(k3)
      const pending = settle(b.locker.acquire(k3))
      await waitFor('the wait to reach the server', async () => (await admin.waiting(b.app)).length === 1)
      await b.locker.close()
      const outcome = await pending
      expect(outcome.status).toBe('rejected')
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(LockerClosedError)
      expect(h1.held).toBe(false)
      expect(h2.held).toBe(false)
      expect(await admin.heldBy(b.app)).toBe(0)
      expect(await admin.waiting(b.app)).toEqual([])
      await expect(b.locker.acquire(randomKey())).rejects.toMatchObject({ code: 'LOCKER_CLOSED' })
      await expect(b.locker.transaction(undefined as never).acquire(randomKey())).rejects.toBeInstanceOf(
        LockerClosedError,
      )
      await b.locker.close()
      await blocker.release()
    })
  })

  sessionDescribe(`${name}: idle killers`, () => {
    it('idle_session_timeout ending a lock-holding session is reported as a loss (at the latest on next use)', async () => {
      const { locker } = await setup({ url: await roleUrl({ idle_session_timeout: '300ms' }) })
      const key = randomKey()
      const handle = await locker.acquire(key)
      await waitFor('the server to end the idle session', async () => (await admin.locks(key)).length === 0)
      await handle.release()
      expect(handle.held).toBe(false)
      expect(handle.signal.reason).toBeInstanceOf(LockLostError)
    })

    it('with keepAliveMs, a held lock outlives idle_session_timeout', async () => {
      const { locker } = await setup({
        url: await roleUrl({ idle_session_timeout: '300ms' }),
        lockerOptions: { keepAliveMs: 100 },
      })
      const key = randomKey()
      const handle = await locker.acquire(key)
      const [row] = await admin.locks(key)
      // Four idle timeouts long: the session must stay, with its lock.
      const until = performance.now() + 1_200
      while (performance.now() < until) {
        expect(await admin.locks(key)).toEqual([row])
        await sleep(50)
      }
      expect(handle.held).toBe(true)
      await handle.release()
      expect(handle.signal.aborted).toBe(false)
      expect(await admin.locks(key)).toEqual([])
    })
  })

  sessionDescribe(`${name}: close() during work`, () => {
    it('close() while withLock runs fn aborts lock.signal and withLock rejects with LockLostError', async () => {
      const { locker } = await setup()
      const key = randomKey()
      let signalReason: unknown
      let closing!: Promise<void>
      const result = locker.withLock(key, async (lock) => {
        closing = locker.close()
        await waitFor('the lock signal to abort', () => lock.signal.aborted)
        signalReason = lock.signal.reason
        return 'finished anyway'
      })
      await expect(result).rejects.toBeInstanceOf(LockLostError)
      expect(signalReason).toBeInstanceOf(LockLostError)
      await closing
      expect(await admin.locks(key)).toEqual([])
    })
  })

  describe(`${name}: transaction scope`, () => {
    it('holds the lock until the transaction commits or rolls back', async () => {
      const { locker, instance, app } = await setup()
      const key = randomKey()
      await instance.transaction(async (tx) => {
        await locker.transaction(tx).acquire(key)
        expect(await admin.locks(key)).toEqual([
          { pid: expect.any(Number), mode: 'ExclusiveLock', granted: true, applicationName: app },
        ])
      })
      expect(await admin.locks(key)).toEqual([])
      const boom = new Error('roll back')
      await expect(
        instance.transaction(async (tx) => {
          await locker.transaction(tx).acquire(key, { shared: true })
          expect((await admin.locks(key)).map((l) => l.mode)).toEqual(['ShareLock'])
          throw boom
        }),
      ).rejects.toBe(boom)
      expect(await admin.locks(key)).toEqual([])
    })

    it('tryAcquire returns false under contention and true when free', async () => {
      const b = await setup()
      const key = randomKey()
      const held = await admin.hold(key)
      await b.instance.transaction(async (tx) => {
        expect(await b.locker.transaction(tx).tryAcquire(key)).toBe(false)
        await held.release()
        expect(await b.locker.transaction(tx).tryAcquire(key)).toBe(true)
        expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([b.app])
      })
      expect(await admin.locks(key)).toEqual([])
    })

    it('a timeout leaves the transaction usable and its lock_timeout unchanged', async () => {
      const b = await setup()
      const key = randomKey()
      const held = await admin.hold(key)
      await b.instance.transaction(async (tx, query) => {
        await query(`SET LOCAL lock_timeout = '7s'`)
        const t0 = performance.now()
        await expect(b.locker.transaction(tx).acquire(key, { timeoutMs: 200 })).rejects.toBeInstanceOf(
          LockTimeoutError,
        )
        expect(elapsedSince(t0)).toBeGreaterThanOrEqual(195)
        expect(await query(`SELECT current_setting('lock_timeout') AS v, 1 AS one`)).toEqual([
          { v: '7s', one: 1 },
        ])
        await held.release()
        await b.locker.transaction(tx).acquire(key, { timeoutMs: 1_000 })
        expect(await query(`SELECT current_setting('lock_timeout') AS v`)).toEqual([{ v: '7s' }])
        expect((await admin.locks(key)).map((l) => l.applicationName)).toEqual([b.app])
      })
      expect(await admin.locks(key)).toEqual([])
    })

    it('a wait without timeoutMs outlasts the caller’s lock_timeout and statement_timeout, then restores them', async () => {
      const b = await setup()
      const key = randomKey()
      const held = await admin.hold(key)
      await b.instance.transaction(async (tx, query) => {
        await query(`SET LOCAL lock_timeout = '50ms'`)
        await query(`SET LOCAL statement_timeout = '150ms'`)
        const t0 = performance.now()
        const releaseLater = sleep(400).then(() => held.release())
        await b.locker.transaction(tx).acquire(key)
        expect(elapsedSince(t0)).toBeGreaterThanOrEqual(350)
        await releaseLater
        expect(
          await query(
            `SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`,
          ),
        ).toEqual([{ l: '50ms', s: '150ms' }])
      })
    })

    it.skipIf(txCancelReason !== undefined)(
      titled('an abort mid-wait leaves the transaction usable', txCancelReason),
      async () => {
        const b = await setup()
        const key = randomKey()
        const held = await admin.hold(key)
        await b.instance.transaction(async (tx, query) => {
          const controller = new AbortController()
          const waiting = b.locker.transaction(tx).acquire(key, { signal: controller.signal })
          await waitFor('the wait to reach the server', async () => (await admin.waiting(b.app)).length === 1)
          const reason = new Error('stop waiting')
          controller.abort(reason)
          await expect(waiting).rejects.toBe(reason)
          expect(await query('SELECT 1 AS one')).toEqual([{ one: 1 }])
          expect(await admin.waiting(b.app)).toEqual([])
        })
        await held.release()
      },
    )

    it.skipIf(txCancelReason !== undefined)(
      titled(
        'close() rejects pending transaction-scoped waits, with or without a signal, while their keys stay taken',
        txCancelReason,
      ),
      async () => {
        const b = await setup()
        const [k1, k2] = [randomKey(), randomKey()]
        const held = [await admin.hold(k1), await admin.hold(k2)]
        const rolledBack = new Error('roll back')
        let usableAfterSignalledWait: unknown
        const [plain, signalled, closing] = await Promise.allSettled([
          // Without timeoutMs or signal, a driver that reports the transaction state waits without a
          // savepoint: the cancel then aborts the transaction, which is rolled back.
          b.instance.transaction(async (tx) => {
            const outcome = await settle(b.locker.transaction(tx).acquire(k1))
            throw outcome.status === 'rejected' ? outcome.reason : rolledBack
          }),
          b.instance.transaction(async (tx, query) => {
            const outcome = await settle(
              b.locker.transaction(tx).acquire(k2, { signal: new AbortController().signal }),
            )
            if (outcome.status === 'fulfilled') throw rolledBack
            usableAfterSignalledWait = await query('SELECT 1 AS one')
            return outcome.reason
          }),
          (async () => {
            await waitFor(
              'both waits to reach the server',
              async () => (await admin.waiting(b.app)).length === 2,
            )
            // Both keys stay held elsewhere: close() must not wait for them.
            await b.locker.close()
            expect([...(await admin.locks(k1)), ...(await admin.locks(k2))]).toHaveLength(2)
          })(),
        ])
        if (closing.status === 'rejected') throw closing.reason
        expect(plain.status).toBe('rejected')
        expect((plain as PromiseRejectedResult).reason).toBeInstanceOf(LockerClosedError)
        expect(signalled.status).toBe('fulfilled')
        expect((signalled as PromiseFulfilledResult<unknown>).value).toBeInstanceOf(LockerClosedError)
        expect(usableAfterSignalledWait).toEqual([{ one: 1 }])
        expect(await admin.waiting(b.app)).toEqual([])
        for (const h of held) await h.release()
        expect(await admin.locks(k1)).toEqual([])
        expect(await admin.locks(k2)).toEqual([])
      },
    )

    it('a transaction-scoped acquire whose lock is granted as close() runs either holds it or rejects holding nothing', async () => {
      const b = await setup()
      const key = randomKey()
      const held = await admin.hold(key)
      const rolledBack = new Error('roll back')
      let outcome: PromiseSettledResult<void> | undefined
      let holders: (string | null)[] = []
      await expect(
        b.instance.transaction(async (tx) => {
          const waiting = settle(b.locker.transaction(tx).acquire(key))
          await waitFor('the wait to reach the server', async () => (await admin.waiting(b.app)).length === 1)
          const releasing = held.release()
          // The event loop stays busy while the server grants the lock: the grant is read after close().
          const until = performance.now() + 200
          while (performance.now() < until) {}
          const closing = b.locker.close()
          outcome = await waiting
          await Promise.all([releasing, closing])
          holders = (await admin.locks(key)).filter((l) => l.granted).map((l) => l.applicationName)
          throw rolledBack
        }),
      ).rejects.toBe(rolledBack)
      if (outcome?.status === 'rejected') {
        // The savepoint route: rolled back to the savepoint, which freed the lock.
        expect(outcome.reason).toBeInstanceOf(LockerClosedError)
        expect(holders).toEqual([])
      } else {
        // Without a savepoint the lock cannot be given back: the acquire says that it holds it.
        expect(outcome?.status).toBe('fulfilled')
        expect(holders).toEqual([b.app])
      }
      expect(await admin.locks(key)).toEqual([])
    })

    it('refuses with NotInTransactionError outside a transaction and holds nothing', async () => {
      const { locker, instance, app } = await setup()
      const key = randomKey()
      await instance.outsideTransaction(async (notTx) => {
        const tl = locker.transaction(notTx)
        await expect(tl.acquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
        await expect(tl.acquire(key, { timeoutMs: 100 })).rejects.toMatchObject({
          code: 'NOT_IN_TRANSACTION',
        })
        await expect(tl.tryAcquire(key)).rejects.toBeInstanceOf(NotInTransactionError)
        await expect(tl.tryAcquire(key, { shared: true })).rejects.toBeInstanceOf(NotInTransactionError)
      })
      expect(await admin.locks(key)).toEqual([])
      expect(await admin.heldBy(app)).toBe(0)
    })

    it('two transactions locking in opposite order: one gets DeadlockError, the other proceeds', async () => {
      const a = await setup()
      const b = await setup()
      const [k1, k2] = [randomKey(), randomKey()]
      let firstHeld = 0
      let bothHeld!: () => void
      const barrier = new Promise<void>((resolve) => {
        bothHeld = resolve
      })
      const run = (s: Setup<Tx>, first: typeof k1, second: typeof k2) =>
        s.instance.transaction(async (tx) => {
          await s.locker.transaction(tx).acquire(first)
          if (++firstHeld === 2) bothHeld()
          await barrier
          await s.locker.transaction(tx).acquire(second)
        })
      const outcomes = await Promise.allSettled([run(a, k1, k2), run(b, k2, k1)])
      const rejected = outcomes.filter((o) => o.status === 'rejected')
      expect(rejected).toHaveLength(1)
      expect((rejected[0] as PromiseRejectedResult).reason).toBeInstanceOf(DeadlockError)
      expect((rejected[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'DEADLOCK' })
      expect(await admin.locks(k1)).toEqual([])
      expect(await admin.locks(k2)).toEqual([])
    })
  })

  sessionDescribe(`${name}: connection sharing`, () => {
    it('held locks share connections: 300 locks over a pool of max: 10 use at most 2, and the app’s queries go on', async () => {
      const { locker, instance, app } = await setup({ max: 10 })
      const sequential: LockHandle[] = []
      for (let i = 0; i < 150; i++) sequential.push(await locker.acquire(randomKey()))
      const concurrent = await Promise.all(
        Array.from({ length: 150 }, (_, i) =>
          i % 3 === 0 ? locker.tryAcquire(randomKey()) : locker.acquire(randomKey(), { timeoutMs: 5_000 }),
        ),
      )
      const handles = [...sequential, ...concurrent]
      expect(handles.every((h) => h?.held === true)).toBe(true)
      const holders = await admin.holders(app)
      expect(holders.length).toBeGreaterThanOrEqual(1)
      expect(holders.length).toBeLessThanOrEqual(2)
      expect(holders.reduce((n, h) => n + h.locks, 0)).toBe(300)
      expect(await instance.query('SELECT 1 AS one')).toEqual([{ one: 1 }])
      await Promise.all(handles.map((h) => h?.release()))
      expect(await admin.heldBy(app)).toBe(0)
      // Holding nothing, every connection went back: they are idle, and the pool serves the app.
      await waitFor('every backend of the app to be idle', async () =>
        (await admin.backends(app)).every((b) => b.state === 'idle'),
      )
      expect(await instance.query('SELECT 1 AS one')).toEqual([{ one: 1 }])
    })

    it('a wait that must block never runs on a connection holding other locks', async () => {
      const { locker, app } = await setup()
      const mine = await locker.acquire(randomKey())
      const sharedPid = (await admin.holders(app))[0]?.pid
      expect(sharedPid).toEqual(expect.any(Number))
      const busy = randomKey()
      const blocker = await admin.hold(busy)
      const waiting = locker.acquire(busy)
      await waitFor('the wait to be on the server', async () => (await admin.waiting(app)).length === 1)
      expect(await admin.waiting(app)).not.toContain(sharedPid)
      // Meanwhile the connection that holds `mine` still takes other locks without waiting.
      const other = await locker.tryAcquire(randomKey())
      expect(other?.held).toBe(true)
      expect((await admin.locks(other!.key))[0]?.pid).toBe(sharedPid)
      await blocker.release()
      const granted = await waiting
      await Promise.all([mine.release(), other!.release(), granted.release()])
      expect(await admin.heldBy(app)).toBe(0)
    })

    it('one connection never holds one key for two handles (no re-entrant grant)', async () => {
      const { locker } = await setup()
      const key = randomKey()
      const shared = await Promise.all([
        locker.acquire(key, { shared: true }),
        locker.acquire(key, { shared: true }),
        locker.acquire(key, { shared: true }),
      ])
      const rows = await admin.locks(key)
      expect(rows).toHaveLength(3)
      expect(new Set(rows.map((r) => r.pid)).size).toBe(3)
      await Promise.all(shared.map((h) => h.release()))
      const held = await locker.acquire(key)
      expect(await locker.tryAcquire(key)).toBeNull()
      await expect(locker.acquire(key, { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeoutError)
      await held.release()
      expect(await admin.locks(key)).toEqual([])
    })

    it.skipIf(lossReason !== undefined)(
      titled('losing a shared connection aborts every handle on it; the locker recovers', lossReason),
      async () => {
        const { locker, app } = await setup()
        const handles: LockHandle[] = []
        for (let i = 0; i < 5; i++) handles.push(await locker.acquire(randomKey()))
        const holders = await admin.holders(app)
        expect(holders).toEqual([{ pid: expect.any(Number), locks: 5 }])
        await admin.terminate(holders[0]!.pid)
        await waitFor('every handle to report the loss', () => handles.every((h) => h.signal.aborted))
        for (const h of handles) {
          expect(h.held).toBe(false)
          expect(h.signal.reason).toBeInstanceOf(LockLostError)
        }
        await Promise.all(handles.map((h) => h.release()))
        const next = await locker.acquire(handles[0]!.key, { timeoutMs: 2_000 })
        expect((await admin.holders(app)).map((h) => h.pid)).not.toContain(holders[0]!.pid)
        await next.release()
      },
    )

    it('aborts of acquires that share a connection never disturb the locks held on it', async () => {
      const { locker, app } = await setup()
      const held: LockHandle[] = []
      for (let i = 0; i < 10; i++) held.push(await locker.acquire(randomKey()))
      const busy = randomKey()
      const blocker = await admin.hold(busy)
      for (let i = 0; i < 100; i++) {
        const controller = new AbortController()
        const key = i % 2 === 0 ? busy : randomKey()
        const attempt = settle(locker.acquire(key, { signal: controller.signal }))
        await sleep(Math.random() * 3)
        controller.abort(new Error('stop'))
        const outcome = await attempt
        if (outcome.status === 'fulfilled') await outcome.value.release()
      }
      expect(held.every((h) => h.held && !h.signal.aborted)).toBe(true)
      expect(await admin.heldBy(app)).toBe(10)
      await blocker.release()
      await Promise.all(held.map((h) => h.release()))
      expect(await admin.heldBy(app)).toBe(0)
      expect(await admin.waiting(app)).toEqual([])
    })
  })

  sessionDescribe(`${name}: pool pressure and the caller's settings`, () => {
    it('with max: 2 and both connections taken by waits, a timed acquire times out waiting for the pool, leaks no connection, and the pool recovers', async () => {
      const { locker, instance, app } = await setup({ max: 2 })
      // Held locks share a connection, but a blocking wait never does: two waits take the whole pool.
      const busy = randomKey()
      const blocker = await admin.hold(busy)
      const waits = [locker.acquire(busy, { shared: true }), locker.acquire(busy, { shared: true })]
      await waitFor('both waits to be on the server', async () => (await admin.waiting(app)).length === 2)
      const t0 = performance.now()
      await expect(locker.acquire(randomKey(), { timeoutMs: 200 })).rejects.toBeInstanceOf(LockTimeoutError)
      const elapsed = elapsedSince(t0)
      expect(elapsed).toBeGreaterThanOrEqual(195)
      expect(elapsed).toBeLessThan(1_500)
      const controller = new AbortController()
      const aborted = locker.acquire(randomKey(), { signal: controller.signal })
      const reason = new Error('enough')
      controller.abort(reason)
      await expect(aborted).rejects.toBe(reason)
      await blocker.release()
      const [h1, h2] = await Promise.all(waits)
      await h1?.release()
      await h2?.release()
      // The connections that arrived after their waiters had gone must be back in the pool.
      const again = [
        await locker.acquire(randomKey(), { timeoutMs: 1_000 }),
        await locker.acquire(randomKey(), { timeoutMs: 1_000 }),
      ]
      await Promise.all(again.map((h) => h.release()))
      expect(await instance.query('SELECT 1 AS one')).toEqual([{ one: 1 }])
      // Adapters that own their lock connections may keep some idle for reuse: idle and holding nothing
      // is what "not leaked" means here.
      await waitFor('every backend of the app to be idle', async () => {
        const backends = await admin.backends(app)
        return backends.every((b) => b.state === 'idle')
      })
      expect(await admin.heldBy(app)).toBe(0)
    })

    it('timed acquires leave the caller’s lock_timeout and statement_timeout unchanged', async () => {
      const a = await setup()
      const b = await setup({ max: 1, settings: { lock_timeout: '7s', statement_timeout: '9s' } })
      const key = randomKey()
      const mine = await b.locker.acquire(key, { timeoutMs: 1_000 })
      await mine.release()
      const held = await a.locker.acquire(key)
      await expect(b.locker.acquire(key, { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeoutError)
      expect(await b.locker.tryAcquire(key)).toBeNull()
      await held.release()
      expect(
        await b.instance.query(
          `SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`,
        ),
      ).toEqual([{ l: '7s', s: '9s' }])
    })

    /**
     * While `a` holds a key, `b`'s untimed wait lasts until the release and its timed waits last their
     * whole timeout, whatever timeouts `b`'s sessions start with (all shorter than these waits).
     */
    async function expectWaitsOutlast(a: Setup<Tx>, b: Setup<Tx>): Promise<void> {
      const key = randomKey()
      const held = await a.locker.acquire(key)
      const t0 = performance.now()
      const releaseLater = sleep(600).then(() => held.release())
      const handle = await b.locker.acquire(key)
      expect(elapsedSince(t0)).toBeGreaterThanOrEqual(550)
      await releaseLater
      await handle.release()
      const again = await a.locker.acquire(key)
      const t1 = performance.now()
      await expect(b.locker.acquire(key, { timeoutMs: 500 })).rejects.toBeInstanceOf(LockTimeoutError)
      expect(elapsedSince(t1)).toBeGreaterThanOrEqual(490)
      const releaseAgain = sleep(400).then(() => again.release())
      const timed = await b.locker.acquire(key, { timeoutMs: 5_000 })
      await releaseAgain
      await timed.release()
    }

    it.for<Record<string, string>>([
      { transaction_timeout: '300ms' },
      { transaction_timeout: '300ms', statement_timeout: '200ms', lock_timeout: '100ms' },
    ])(
      'the caller’s transaction_timeout (PostgreSQL 17+) never cuts a session wait short (%o)',
      async (settings, ctx) => {
        const [version] = await admin.query<{ v: number }>(
          `SELECT current_setting('server_version_num')::int AS v`,
        )
        if (version === undefined || version.v < 170_000) ctx.skip()
        const a = await setup()
        // As a DBA sets it (ALTER ROLE): not every driver can pass transaction_timeout itself.
        const b = await setup({ max: 1, url: await roleUrl(settings) })
        await expectWaitsOutlast(a, b)
        expect(await b.instance.query(`SELECT current_setting('transaction_timeout') AS t`)).toEqual([
          { t: settings.transaction_timeout },
        ])
        expect(await admin.heldBy(b.app)).toBe(0)
      },
    )

    it.each([
      { lock_timeout: '100ms', statement_timeout: '200ms' },
      { lock_timeout: '100ms', statement_timeout: '0' },
      { lock_timeout: '0', statement_timeout: '200ms' },
    ])('the caller’s statement_timeout and lock_timeout never cut a wait short (%o)', async (settings) => {
      const a = await setup()
      const b = await setup({ max: 1, settings })
      await expectWaitsOutlast(a, b)
      expect(
        await b.instance.query(
          `SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`,
        ),
      ).toEqual([{ l: settings.lock_timeout, s: settings.statement_timeout }])
      expect(await admin.heldBy(b.app)).toBe(0)
    })
  })
}
