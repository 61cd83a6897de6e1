/*
 * A connection the driver cannot destroy (@databases/pg) is cleaned before it goes back. When the
 * server goes silent during that clean-up, the watch gives the session up, and whoever waited for its
 * end (here release(), after an unlock the server answered with false) goes on rather than wait for
 * the silent server. Checked against a fake adapter whose clean-up and hand-back never settle.
 */
import { expect, it } from 'vitest'
import { type Adapter, createLocker, LockLostError, type Row } from '../src/index.js'

const never = new Promise<never>(() => {})

it('a release whose connection goes silent while being cleaned settles once the clean-up is given up on', async () => {
  const cleanUps: string[] = []
  const adapter: Adapter<never> = {
    name: 'fake',
    async connect() {
      return {
        destroyable: false,
        query(text: string): Promise<readonly Row[]> {
          if (text.includes('pg_try_advisory_lock')) return Promise.resolve([{ acquired: true, pid: 1 }])
          // The server no longer holds the lock: the session is cleaned before it goes back.
          if (text.includes('pg_advisory_unlock(')) return Promise.resolve([{ released: false }])
          cleanUps.push(text)
          return never
        },
        release: () => never,
      }
    },
    transaction() {
      throw new TypeError('no transactions here')
    },
    sqlState: () => undefined,
    isConnectionError: () => false,
  }
  const abandonAfterMs = 200
  const locker = createLocker(adapter, { abandonAfterMs })
  const handle = await locker.acquire(1n)
  const t0 = performance.now()
  const outcome = await Promise.race([
    handle.release().then(() => 'settled'),
    new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting')),
  ])
  expect(outcome).toBe('settled')
  expect(performance.now() - t0).toBeGreaterThan(abandonAfterMs - 20)
  expect(cleanUps).toHaveLength(1)
  expect(handle.signal.reason).toBeInstanceOf(LockLostError)
})
