import { Admin } from '@pglock/conformance'
import { lockKey } from '@pglock/core'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type App, drivers, SCHEMA } from '../src/drivers.js'
import { incrementCounter, reserveSeat, runScheduledJob } from '../src/lock-code.js'

const url = inject('pglockDatabaseUrl')
let admin: Admin

beforeAll(async () => {
  admin = await Admin.connect(url)
  const client = new pg.Client(url)
  await client.connect()
  await client.query(SCHEMA)
  await client.end()
})
afterAll(async () => {
  await admin.close()
})

/** Three instances of the app (as three pods would run), each with its own client and locker. */
async function instances(name: string, n = 3): Promise<App<never>[]> {
  const factory = drivers[name]!
  return Array.from({ length: n }, () => factory(url))
}

async function closeAll(apps: App<never>[]): Promise<void> {
  for (const app of apps) {
    await app.locker.close()
    await app.close()
  }
}

describe.each(Object.keys(drivers))('the same lock code on %s', (name) => {
  it('runs a scheduled job on exactly one instance', async () => {
    const apps = await instances(name)
    try {
      let running = 0
      let ran = 0
      const results = await Promise.all(
        apps.map((app) =>
          runScheduledJob(app.locker, `nightly-${name}`, async () => {
            running++
            ran++
            // Hold the job long enough for every instance to try it.
            await new Promise((resolve) => setTimeout(resolve, 200))
            expect(running).toBe(1)
            running--
          }),
        ),
      )
      expect(results.filter(Boolean)).toHaveLength(1)
      expect(ran).toBe(1)
    } finally {
      await closeAll(apps)
    }
  })

  it('serialises a read-modify-write counter across instances', async () => {
    const apps = await instances(name)
    try {
      await admin.query(
        `INSERT INTO swap_counter VALUES ($1, 0) ON CONFLICT (driver) DO UPDATE SET value = 0`,
        [name],
      )
      const perInstance = 15
      await Promise.all(
        apps.map(async (app) => {
          for (let i = 0; i < perInstance; i++) await incrementCounter(app.locker, app.data)
        }),
      )
      const [row] = await admin.query<{ value: number }>(`SELECT value FROM swap_counter WHERE driver = $1`, [
        name,
      ])
      expect(row?.value).toBe(apps.length * perInstance)
    } finally {
      await closeAll(apps)
    }
  })

  it('reserves each seat once, with transaction-scoped locks', async () => {
    const apps = await instances(name)
    try {
      await admin.query(`DELETE FROM swap_seats WHERE driver = $1`, [name])
      const seats = [1, 2, 3]
      const outcomes = await Promise.all(
        apps.flatMap((app, i) => seats.map((seat) => reserveSeat(app.locker, app.data, seat, `guest-${i}`))),
      )
      expect(outcomes.filter(Boolean)).toHaveLength(seats.length)
      const rows = await admin.query(`SELECT seat FROM swap_seats WHERE driver = $1 ORDER BY seat`, [name])
      expect(rows).toEqual(seats.map((seat) => ({ seat })))
      // Transaction-scoped: every seat lock ended with its transaction.
      for (const seat of seats) expect(await admin.locks(lockKey(['seats', seat]))).toEqual([])
    } finally {
      await closeAll(apps)
    }
  })
})
