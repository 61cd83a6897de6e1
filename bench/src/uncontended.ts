/**
 * Uncontended cases: one operation after another on a free key. The raw drivers doing the same round
 * trips are the floors; pglock on each adapter, and the advisory-lock package, are measured beside them.
 */

import { sql as databasesSql } from '@databases/pg'
import advisoryLock from 'advisory-lock'
import type pg from 'pg'
import postgres from 'postgres'
import { APP_NAME_PREFIX, type BenchCase, type RunContext, type UncontendedSample } from './cases.js'
import { elapsedNs, quantile } from './stats.js'
import {
  databasesPool,
  type OpenSubject,
  openSubject,
  pgPool,
  postgresjsOptions,
  SUBJECTS,
  type SubjectId,
} from './subjects.js'
import { benchSessions, randomKey, waitUntil } from './util.js'

/** Pool size of the uncontended cases (one operation runs at a time). */
const POOL_MAX = 4
const APP_NAME = `${APP_NAME_PREFIX}-uncontended`

/**
 * Operations per block when a case alternates with its floor: long enough that switching costs
 * nothing measurable, short enough (tens of ms) that the machine's drift hits both alike.
 */
const BLOCK_OPS = 100

/** A floor's operation, on a resource opened for the case (and closed with it). */
interface Floor<T> {
  open(ctx: RunContext): Promise<T>
  op(resource: T, key: bigint): Promise<void>
  close(resource: T): Promise<void>
}

/** CPU time of this process since `from`, in ns. */
function cpuNsSince(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from)
  return (used.user + used.system) * 1000
}

/**
 * Runs `op` `warmup` times, then `ops` times, timing each. With `floorOp`, the floor runs as many
 * times, in blocks of {@link BLOCK_OPS} that alternate with the case's (which block goes first
 * alternates too), and is timed apart: the case ÷ floor ratio then compares the two over the same
 * seconds of the machine's time.
 */
async function measure(
  op: () => Promise<void>,
  warmup: number,
  ops: number,
  floorOp?: () => Promise<void>,
): Promise<UncontendedSample> {
  for (let i = 0; i < warmup; i++) {
    await op()
    await floorOp?.()
  }
  const latencies = new Float64Array(ops)
  let totalNs = 0
  let cpuNs = 0
  let floorNs = 0
  let floorCpuNs = 0
  const runCase = async (from: number, n: number) => {
    const cpuStart = process.cpuUsage()
    const start = process.hrtime.bigint()
    let previous = start
    for (let i = from; i < from + n; i++) {
      await op()
      const now = process.hrtime.bigint()
      latencies[i] = elapsedNs(previous, now)
      previous = now
    }
    totalNs += elapsedNs(start, previous)
    cpuNs += cpuNsSince(cpuStart)
  }
  const runFloor = async (n: number) => {
    if (floorOp === undefined) return
    const cpuStart = process.cpuUsage()
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) await floorOp()
    floorNs += elapsedNs(start, process.hrtime.bigint())
    floorCpuNs += cpuNsSince(cpuStart)
  }
  const block = floorOp === undefined ? ops : BLOCK_OPS
  for (let done = 0, turn = 0; done < ops; done += block, turn++) {
    const n = Math.min(block, ops - done)
    if (turn % 2 === 1) await runFloor(n)
    await runCase(done, n)
    if (turn % 2 === 0) await runFloor(n)
  }
  const sorted = Array.from(latencies)
  return {
    kind: 'uncontended',
    ops,
    totalOps: warmup + ops,
    totalNs,
    nsPerOp: totalNs / ops,
    p50Ns: quantile(sorted, 0.5) ?? Number.NaN,
    p99Ns: quantile(sorted, 0.99) ?? Number.NaN,
    cpuNsPerOp: cpuNs / ops,
    ...(floorOp === undefined
      ? {}
      : {
          paired: {
            floorNsPerOp: floorNs / ops,
            floorCpuNsPerOp: floorCpuNs / ops,
            floorTotalOps: warmup + ops,
          },
        }),
  }
}

/**
 * Opens something, measures `op` on it with the context's counts, and always closes it; with a
 * `floor`, opens that too and measures it alongside (see {@link measure}).
 */
async function measureOn<T, F = never>(
  ctx: RunContext,
  open: () => Promise<T>,
  op: (resource: T, key: bigint) => Promise<void>,
  close: (resource: T) => Promise<void>,
  floor?: Floor<F>,
): Promise<UncontendedSample> {
  const resource = await open()
  try {
    const key = randomKey()
    if (floor === undefined) {
      return await measure(() => op(resource, key), ctx.counts.warmupOps, ctx.counts.ops)
    }
    const floorResource = await floor.open(ctx)
    try {
      // A key of its own: the floor's lock must never wait for the case's.
      const floorKey = randomKey()
      return await measure(
        () => op(resource, key),
        ctx.counts.warmupOps,
        ctx.counts.ops,
        () => floor.op(floorResource, floorKey),
      )
    } finally {
      await floor.close(floorResource)
    }
  } finally {
    await close(resource)
  }
}

const LOCK = 'SELECT pg_advisory_lock($1::bigint) IS NOT NULL AS acquired'
const UNLOCK = 'SELECT pg_advisory_unlock($1::bigint) AS released'
const XACT_LOCK = 'SELECT pg_advisory_xact_lock($1::bigint) IS NOT NULL AS acquired'

/** A pg client checked out once for the whole case (a "held connection"), with its pool. */
interface HeldPgClient {
  readonly pool: pg.Pool
  readonly client: pg.PoolClient
}
async function heldPgClient(url: string): Promise<HeldPgClient> {
  const pool = pgPool(url, { max: POOL_MAX, applicationName: APP_NAME })
  return { pool, client: await pool.connect() }
}
async function closeHeldPgClient({ pool, client }: HeldPgClient) {
  client.release()
  await pool.end()
}

type PostgresSql = ReturnType<typeof postgres>

/** The raw drivers doing pglock's round trips: the floors, by case id. */
const FLOORS = {
  'pg/floor-a': {
    label: 'pg floor (a): lock + unlock on a held connection',
    short: 'pg (a) lock + unlock',
    floor: {
      open: (ctx) => heldPgClient(ctx.url),
      async op({ client }, key) {
        await client.query(LOCK, [String(key)])
        await client.query(UNLOCK, [String(key)])
      },
      close: closeHeldPgClient,
    } satisfies Floor<HeldPgClient>,
  },
  'pg/floor-b': {
    label: 'pg floor (b): pool.connect + lock + unlock + release',
    short: 'pg (b) connect + lock + unlock + release',
    floor: {
      open: async (ctx) => pgPool(ctx.url, { max: POOL_MAX, applicationName: APP_NAME }),
      async op(pool, key) {
        const client = await pool.connect()
        try {
          await client.query(LOCK, [String(key)])
          await client.query(UNLOCK, [String(key)])
        } finally {
          client.release()
        }
      },
      close: (pool) => pool.end(),
    } satisfies Floor<pg.Pool>,
  },
  'pg/floor-c': {
    label: 'pg floor (c): BEGIN + xact lock + COMMIT on a held connection',
    short: 'pg (c) BEGIN + xact lock + COMMIT',
    floor: {
      open: (ctx) => heldPgClient(ctx.url),
      async op({ client }, key) {
        await client.query('BEGIN')
        await client.query(XACT_LOCK, [String(key)])
        await client.query('COMMIT')
      },
      close: closeHeldPgClient,
    } satisfies Floor<HeldPgClient>,
  },
  'postgresjs/floor-a': {
    label: 'postgres.js floor (a): lock + unlock on a reserved connection',
    short: 'postgres.js (a) lock + unlock',
    floor: {
      async open(ctx) {
        const sql = postgres(ctx.url, postgresjsOptions({ max: POOL_MAX, applicationName: APP_NAME }))
        return { sql, reserved: await sql.reserve() }
      },
      async op({ reserved }, key) {
        await reserved`SELECT pg_advisory_lock(${String(key)}::bigint) IS NOT NULL AS acquired`
        await reserved`SELECT pg_advisory_unlock(${String(key)}::bigint) AS released`
      },
      async close({ sql, reserved }) {
        reserved.release()
        await sql.end({ timeout: 5 })
      },
    } satisfies Floor<{ sql: PostgresSql; reserved: Awaited<ReturnType<PostgresSql['reserve']>> }>,
  },
  'postgresjs/floor-b': {
    label: 'postgres.js floor (b): sql.reserve + lock + unlock + release',
    short: 'postgres.js (b) reserve + lock + unlock + release',
    floor: {
      open: async (ctx) => postgres(ctx.url, postgresjsOptions({ max: POOL_MAX, applicationName: APP_NAME })),
      async op(sql, key) {
        const reserved = await sql.reserve()
        try {
          await reserved`SELECT pg_advisory_lock(${String(key)}::bigint) IS NOT NULL AS acquired`
          await reserved`SELECT pg_advisory_unlock(${String(key)}::bigint) AS released`
        } finally {
          reserved.release()
        }
      },
      close: (sql) => sql.end({ timeout: 5 }),
    } satisfies Floor<PostgresSql>,
  },
  'databases/floor-b': {
    label: '@databases/pg floor (b): db.task + lock + unlock',
    short: '@databases/pg (b) task + lock + unlock',
    floor: {
      open: async (ctx) => databasesPool(ctx.url, { max: POOL_MAX, applicationName: APP_NAME }),
      async op(db, key) {
        await db.task(async (conn) => {
          await conn.query(
            databasesSql`SELECT pg_advisory_lock(${String(key)}::bigint) IS NOT NULL AS acquired`,
          )
          await conn.query(databasesSql`SELECT pg_advisory_unlock(${String(key)}::bigint) AS released`)
        })
      },
      close: (db) => db.dispose(),
    } satisfies Floor<ReturnType<typeof databasesPool>>,
  },
} as const

type FloorId = keyof typeof FLOORS

/** The floor of a transaction-scoped lock on each adapter: its own transaction API with the raw statement. */
function transactionFloor(id: SubjectId): Floor<OpenSubject> {
  return {
    open: (ctx) => openSubject(id, ctx.url, { max: POOL_MAX, applicationName: APP_NAME }),
    op: (subject, key) => subject.rawLockInTransaction(key),
    close: (subject) => subject.close(),
  }
}

/** The floor a case id names: one of {@link FLOORS}, or an adapter's transaction floor (`<id>/floor-c`). */
function floorOf(floorId: string): Floor<never> {
  const known = (FLOORS as Record<string, { floor: Floor<unknown> } | undefined>)[floorId]
  if (known !== undefined) return known.floor as Floor<never>
  const subject = SUBJECTS.find((s) => floorId === `${s.id}/floor-c`)
  if (subject === undefined) throw new Error(`bench: no floor ${floorId}`)
  return transactionFloor(subject.id) as Floor<never>
}

/**
 * A floor measured on its own (its row in the table); with `against` (that same floor's id), measured
 * against itself as a pglock case is against it (see {@link controlCase}).
 */
function floorCase(
  id: string,
  label: string,
  short: string,
  floor: Floor<never>,
  against?: FloorId,
): BenchCase {
  return {
    id,
    section: 'uncontended',
    label,
    short,
    ...(against === undefined ? {} : { floorId: against }),
    run: (ctx) =>
      measureOn(
        ctx,
        () => floor.open(ctx),
        (resource, key) => floor.op(resource, key),
        (resource) => floor.close(resource),
        against === undefined ? undefined : floor,
      ),
  }
}

function floorCases(): BenchCase[] {
  return (Object.keys(FLOORS) as FloorId[]).map((id) =>
    floorCase(id, FLOORS[id].label, FLOORS[id].short, floorOf(id)),
  )
}

function transactionFloorCase(id: SubjectId, label: string, short: string): BenchCase {
  return floorCase(`${id}/floor-c`, label, short, floorOf(`${id}/floor-c`))
}

/** The operations measured for pglock on every adapter. */
const PGLOCK_OPERATIONS: readonly {
  readonly op: string
  readonly label: string
  readonly short: string
  readonly scope: 'session' | 'transaction'
  run(subject: OpenSubject, key: bigint): Promise<void>
}[] = [
  {
    op: 'acquire',
    label: 'acquire + release',
    short: 'acquire + release',
    scope: 'session',
    async run(subject, key) {
      const lock = await subject.locker.acquire(key)
      await lock.release()
    },
  },
  {
    op: 'with-lock',
    label: 'withLock',
    short: 'withLock',
    scope: 'session',
    async run(subject, key) {
      await subject.locker.withLock(key, () => {})
    },
  },
  {
    op: 'try-acquire',
    label: 'tryAcquire + release',
    short: 'tryAcquire + release',
    scope: 'session',
    async run(subject, key) {
      const lock = await subject.locker.tryAcquire(key)
      if (lock === null) throw new Error('tryAcquire found a free key taken')
      await lock.release()
    },
  },
  {
    op: 'timed-acquire',
    label: 'acquire { timeoutMs: 5000 } + release',
    short: 'timed acquire + release',
    scope: 'session',
    async run(subject, key) {
      const lock = await subject.locker.acquire(key, { timeoutMs: 5_000 })
      await lock.release()
    },
  },
  {
    op: 'tx-acquire',
    label: 'transaction(tx).acquire in BEGIN … COMMIT',
    short: 'transaction acquire',
    scope: 'transaction',
    run: (subject, key) => subject.lockInTransaction(key),
  },
]

function pglockCases(): BenchCase[] {
  const cases: BenchCase[] = []
  for (const subject of SUBJECTS) {
    if (subject.id !== 'pg' && subject.id !== 'postgresjs') {
      cases.push(
        transactionFloorCase(
          subject.id,
          `${subject.label} floor (c): its transaction + raw xact lock`,
          `${subject.short} (c) transaction + xact lock`,
        ),
      )
    }
    for (const operation of PGLOCK_OPERATIONS) {
      const floorId =
        operation.scope === 'session' ? `${subject.sessionFloor}/floor-b` : `${subject.id}/floor-c`
      cases.push({
        id: `pglock-${subject.id}/${operation.op}`,
        section: 'uncontended',
        label: `pglock ${subject.label}: ${operation.label}`,
        short: `${subject.short}: ${operation.short}`,
        floorId,
        run: (ctx) =>
          measureOn(
            ctx,
            () => openSubject(subject.id, ctx.url, { max: POOL_MAX, applicationName: APP_NAME }),
            (open, key) => operation.run(open, key),
            (open) => open.close(),
            floorOf(floorId),
          ),
      })
    }
  }
  return cases
}

const ADVISORY_LOCK_APP_NAME = `${APP_NAME_PREFIX}-advisory-lock`

/**
 * advisory-lock 2.0.0: `lock()` opens a new pg Client, `unlock()` unlocks and ends it (without waiting
 * for the end). Its throughput is divided by pglock's (pg adapter, acquire + release) of the same round.
 */
function advisoryLockCase(): BenchCase {
  return {
    id: 'advisory-lock/lock-unlock',
    section: 'uncontended',
    label: 'advisory-lock 2.0.0: lock() + unlock()',
    short: 'advisory-lock: lock + unlock',
    floorId: 'pglock-pg/acquire',
    async run(ctx) {
      const url = new URL(ctx.url)
      url.searchParams.set('application_name', ADVISORY_LOCK_APP_NAME)
      const mutex = advisoryLock.default(url.toString())(`pglock-bench-${randomKey()}`)
      try {
        return await measure(
          async () => {
            const unlock = await mutex.lock()
            await unlock()
          },
          ctx.counts.advisoryLockWarmupOps,
          ctx.counts.advisoryLockOps,
        )
      } finally {
        // Its unlock() does not wait for the connection to close: let those closes finish before the
        // next case, so that they do not load it.
        await waitUntil(async () => (await benchSessions(ctx.admin, ADVISORY_LOCK_APP_NAME)) === 0, 10_000)
      }
    },
  }
}

/**
 * A floor measured against itself, as a pglock case is against it (see `control` in contention.ts):
 * what two identical implementations read, the resolution of the uncontended ratios.
 */
function controlCase(floorId: FloorId, driver: string): BenchCase {
  return floorCase(
    `control/${floorId.replace('/', '-')}`,
    `control: ${FLOORS[floorId].label.replace(/:.*/, '')} against itself (the bench's noise)`,
    `control: ${driver} (b) again`,
    floorOf(floorId),
    floorId,
  )
}

/** Every uncontended case, each right after the floor it is divided by. */
export function uncontendedCases(): BenchCase[] {
  const floors = floorCases()
  const pgFloors = floors.filter((c) => c.id.startsWith('pg/'))
  const pjsFloors = floors.filter((c) => c.id.startsWith('postgresjs/'))
  const databasesFloors = floors.filter((c) => c.id.startsWith('databases/'))
  const pglock = pglockCases()
  const pglockOf = (id: SubjectId) =>
    pglock.filter((c) => c.id.startsWith(`pglock-${id}/`) || c.id === `${id}/floor-c`)
  return [
    ...pgFloors,
    ...pglockOf('pg'),
    controlCase('pg/floor-b', 'pg'),
    advisoryLockCase(),
    ...pjsFloors,
    transactionFloorCase(
      'postgresjs',
      'postgres.js floor (c): sql.begin + xact lock',
      'postgres.js (c) sql.begin + xact lock',
    ),
    ...pglockOf('postgresjs'),
    controlCase('postgresjs/floor-b', 'postgres.js'),
    ...pglockOf('kysely'),
    ...pglockOf('drizzle'),
    ...databasesFloors,
    ...pglockOf('databases'),
  ]
}
