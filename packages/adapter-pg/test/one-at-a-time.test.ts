/**
 * The core's promise to adapters (`LockConnection.query` in adapter.ts): it never sends a statement
 * on a connection before the previous one settled. Checked at the adapter boundary under a mixed load
 * on a few hot keys: blocking waits, timed waits, tries that multiplex onto connections holding other
 * locks, unlocks (among them the unlock of a connection's only lock, which the core sends without
 * ordering bookkeeping) and keep-alives every few milliseconds.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Admin, appName, appPgPool, randomKey } from '@pglock/conformance'
import {
  type Adapter,
  createLocker,
  type LockHandle,
  type LockKey,
  LockTimeoutError,
  type SessionConnection,
} from '@pglock/core'
import { afterAll, beforeAll, expect, inject, it, onTestFinished } from 'vitest'
import { pgAdapter } from '../src/index.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
})
afterAll(async () => {
  await admin.close()
})

/** `adapter`, with every lent connection recording the statements sent while another was in flight. */
function watched<T>(adapter: Adapter<T>) {
  const overlapping: string[] = []
  let statements = 0
  const watching: Adapter<T> = {
    ...adapter,
    async connect(options): Promise<SessionConnection> {
      const conn = await adapter.connect(options)
      let inFlight = 0
      return {
        ...conn,
        async query(text, params) {
          statements++
          if (inFlight > 0) overlapping.push(text)
          inFlight++
          try {
            return await conn.query(text, params)
          } finally {
            inFlight--
          }
        },
      }
    },
  }
  return { adapter: watching, overlapping, statements: () => statements }
}

it('never sends a statement on a connection while another is in flight, under mixed load with keep-alives', async () => {
  const app = appName('one-at-a-time')
  const pool = appPgPool({ url, max: 6, applicationName: app })
  const watch = watched(pgAdapter(pool))
  const locker = createLocker(watch.adapter, { keepAliveMs: 5 })
  onTestFinished(async () => {
    await locker.close()
    await pool.end()
  })
  const keys = Array.from({ length: 5 }, () => randomKey())
  const pick = () => keys[Math.floor(Math.random() * keys.length)] as LockKey
  const hold = async (handle: LockHandle | null) => {
    if (handle === null) return
    await sleep(Math.random() < 0.5 ? 0 : Math.floor(Math.random() * 8))
    await handle.release()
  }
  const counts = { acquired: 0, tried: 0, timedOut: 0 }
  // Enough of each kind for the check to mean something (asserted below): at least 1.5 s of load, and
  // longer on a busy machine until there is enough, up to 20 s.
  const enough = () =>
    watch.statements() > 1_000 && counts.acquired > 100 && counts.tried > 100 && counts.timedOut > 0
  const started = Date.now()
  const busy = () => Date.now() < started + 1_500 || (!enough() && Date.now() < started + 20_000)
  const worker = async () => {
    while (busy()) {
      const roll = Math.random()
      if (roll < 0.45) {
        await hold(await locker.acquire(pick()))
        counts.acquired++
      } else if (roll < 0.8) {
        await hold(await locker.tryAcquire(pick()))
        counts.tried++
      } else {
        try {
          await hold(await locker.acquire(pick(), { timeoutMs: 3 }))
        } catch (error) {
          if (!(error instanceof LockTimeoutError)) throw error
          counts.timedOut++
        }
      }
    }
  }
  await Promise.all(Array.from({ length: 12 }, worker))

  expect(watch.overlapping).toEqual([])
  expect(watch.statements()).toBeGreaterThan(1_000)
  expect(counts.acquired).toBeGreaterThan(100)
  expect(counts.tried).toBeGreaterThan(100)
  expect(counts.timedOut).toBeGreaterThan(0)
  // Every lock went back.
  expect(await admin.heldBy(app)).toBe(0)
})
