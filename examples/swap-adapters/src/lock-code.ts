/**
 * The app's lock code. It is the same for every driver: it sees only pglock's `Locker` and the app's
 * own data functions (`AppData`), so swapping pg for postgres.js, Kysely, Drizzle or @databases/pg
 * changes the line that creates the locker (see drivers.ts), and nothing here.
 */
import type { Locker } from '@pglock/core'

/** The app's own queries, written with whatever driver it uses; `Tx` is that driver's transaction. */
export interface AppData<Tx> {
  readCounter(): Promise<number>
  writeCounter(value: number): Promise<void>
  /** Runs `fn` in a transaction of the app's driver. */
  inTransaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>
  seatHolder(tx: Tx, seat: number): Promise<string | undefined>
  reserveSeat(tx: Tx, seat: number, guest: string): Promise<void>
}

/** A scheduled job that every instance triggers; only one of them runs it ("skip if already running"). */
export async function runScheduledJob<Tx>(
  locker: Locker<Tx>,
  job: string,
  run: () => Promise<void>,
): Promise<boolean> {
  const result = await locker.tryWithLock(`jobs:${job}`, run)
  return result.acquired
}

/** A read-modify-write of a shared counter, serialised across all instances. */
export async function incrementCounter<Tx>(locker: Locker<Tx>, data: AppData<Tx>): Promise<void> {
  await locker.withLock(
    'counter',
    async () => {
      const value = await data.readCounter()
      await data.writeCounter(value + 1)
    },
    { timeoutMs: 10_000 },
  )
}

/**
 * Reserves a seat inside the app's transaction; the transaction-scoped lock on the seat number makes
 * "check, then insert" safe and ends with the transaction. Returns false when the seat was taken.
 */
export async function reserveSeat<Tx>(
  locker: Locker<Tx>,
  data: AppData<Tx>,
  seat: number,
  guest: string,
): Promise<boolean> {
  return data.inTransaction(async (tx) => {
    await locker.transaction(tx).acquire(['seats', seat], { timeoutMs: 10_000 })
    if ((await data.seatHolder(tx, seat)) !== undefined) return false
    await data.reserveSeat(tx, seat, guest)
    return true
  })
}
