/**
 * Uncontended cases: one operation after another on a free key. The raw drivers doing the same round
 * trips are the floors; pglock on each adapter, and the advisory-lock package, are measured beside them.
 */
import advisoryLock from 'advisory-lock'
import type pg from 'pg'
import postgres from 'postgres'
import { APP_NAME_PREFIX, type BenchCase, type RunContext, type UncontendedSample } from './cases.js'
import { elapsedNs, quantile } from './stats.js'
import {
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

/** Runs `op` `warmup` times, then `ops` times, timing each. */
async function measure(op: () => Promise<void>, warmup: number, ops: number): Promise<UncontendedSample> {
  for (let i = 0; i < warmup; i++) await op()
  const latencies = new Float64Array(ops)
  const cpuStart = process.cpuUsage()
  const start = process.hrtime.bigint()
  let previous = start
  for (let i = 0; i < ops; i++) {
    await op()
    const now = process.hrtime.bigint()
    latencies[i] = elapsedNs(previous, now)
    previous = now
  }
  const totalNs = elapsedNs(start, previous)
  const cpu = process.cpuUsage(cpuStart)
  const sorted = Array.from(latencies)
  return {
    kind: 'uncontended',
    ops,
    totalOps: warmup + ops,
    totalNs,
    nsPerOp: totalNs / ops,
    p50Ns: quantile(sorted, 0.5) ?? Number.NaN,
    p99Ns: quantile(sorted, 0.99) ?? Number.NaN,
    cpuNsPerOp: ((cpu.user + cpu.system) * 1000) / ops,
  }
}

/** Opens something, measures `op` on it with the context's counts, and always closes it. */
async function measureOn<T>(
  ctx: RunContext,
  open: () => Promise<T>,
  op: (resource: T, key: bigint) => Promise<void>,
  close: (resource: T) => Promise<void>,
): Promise<UncontendedSample> {
  const resource = await open()
  try {
    const key = randomKey()
    return await measure(() => op(resource, key), ctx.counts.warmupOps, ctx.counts.ops)
  } finally {
    await close(resource)
  }
}

const LOCK = 'SELECT pg_advisory_lock($1::bigint) IS NOT NULL AS acquired'
const UNLOCK = 'SELECT pg_advisory_unlock($1::bigint) AS released'
const XACT_LOCK = 'SELECT pg_advisory_xact_lock($1::bigint) IS NOT NULL AS acquired'

/** A pg client checked out once for the whole case (a "held connection"), with its pool. */
async function heldPgClient(url: string): Promise<{ pool: pg.Pool; client: pg.PoolClient }> {
  const pool = pgPool(url, { max: POOL_MAX, applicationName: APP_NAME })
  return { pool, client: await pool.connect() }
}
async function closeHeldPgClient({ pool, client }: { pool: pg.Pool; client: pg.PoolClient }) {
  client.release()
  await pool.end()
}

function floorCases(): BenchCase[] {
  return [
    {
      id: 'pg/floor-a',
      section: 'uncontended',
      label: 'pg floor (a): lock + unlock on a held connection',
      short: 'pg (a) lock + unlock',
      run: (ctx) =>
        measureOn(
          ctx,
          () => heldPgClient(ctx.url),
          async ({ client }, key) => {
            await client.query(LOCK, [String(key)])
            await client.query(UNLOCK, [String(key)])
          },
          closeHeldPgClient,
        ),
    },
    {
      id: 'pg/floor-b',
      section: 'uncontended',
      label: 'pg floor (b): pool.connect + lock + unlock + release',
      short: 'pg (b) connect + lock + unlock + release',
      run: (ctx) =>
        measureOn(
          ctx,
          async () => pgPool(ctx.url, { max: POOL_MAX, applicationName: APP_NAME }),
          async (pool, key) => {
            const client = await pool.connect()
            try {
              await client.query(LOCK, [String(key)])
              await client.query(UNLOCK, [String(key)])
            } finally {
              client.release()
            }
          },
          (pool) => pool.end(),
        ),
    },
    {
      id: 'pg/floor-c',
      section: 'uncontended',
      label: 'pg floor (c): BEGIN + xact lock + COMMIT on a held connection',
      short: 'pg (c) BEGIN + xact lock + COMMIT',
      run: (ctx) =>
        measureOn(
          ctx,
          () => heldPgClient(ctx.url),
          async ({ client }, key) => {
            await client.query('BEGIN')
            await client.query(XACT_LOCK, [String(key)])
            await client.query('COMMIT')
          },
          closeHeldPgClient,
        ),
    },
    {
      id: 'postgresjs/floor-a',
      section: 'uncontended',
      label: 'postgres.js floor (a): lock + unlock on a reserved connection',
      short: 'postgres.js (a) lock + unlock',
      run: (ctx) =>
        measureOn(
          ctx,
          async () => {
            const sql = postgres(ctx.url, postgresjsOptions({ max: POOL_MAX, applicationName: APP_NAME }))
            return { sql, reserved: await sql.reserve() }
          },
          async ({ reserved }, key) => {
            await reserved`SELECT pg_advisory_lock(${String(key)}::bigint) IS NOT NULL AS acquired`
            await reserved`SELECT pg_advisory_unlock(${String(key)}::bigint) AS released`
          },
          async ({ sql, reserved }) => {
            reserved.release()
            await sql.end({ timeout: 5 })
          },
        ),
    },
    {
      id: 'postgresjs/floor-b',
      section: 'uncontended',
      label: 'postgres.js floor (b): sql.reserve + lock + unlock + release',
      short: 'postgres.js (b) reserve + lock + unlock + release',
      run: (ctx) =>
        measureOn(
          ctx,
          async () => postgres(ctx.url, postgresjsOptions({ max: POOL_MAX, applicationName: APP_NAME })),
          async (sql, key) => {
            const reserved = await sql.reserve()
            try {
              await reserved`SELECT pg_advisory_lock(${String(key)}::bigint) IS NOT NULL AS acquired`
              await reserved`SELECT pg_advisory_unlock(${String(key)}::bigint) AS released`
            } finally {
              reserved.release()
            }
          },
          (sql) => sql.end({ timeout: 5 }),
        ),
    },
  ]
}

/** The floor of a transaction-scoped lock on each adapter: its own transaction API with the raw statement. */
function transactionFloorCase(id: SubjectId, label: string, short: string): BenchCase {
  return {
    id: `${id}/floor-c`,
    section: 'uncontended',
    label,
    short,
    run: (ctx) =>
      measureOn(
        ctx,
        () => openSubject(id, ctx.url, { max: POOL_MAX, applicationName: APP_NAME }),
        (subject, key) => subject.rawLockInTransaction(key),
        (subject) => subject.close(),
      ),
  }
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
      cases.push({
        id: `pglock-${subject.id}/${operation.op}`,
        section: 'uncontended',
        label: `pglock ${subject.label}: ${operation.label}`,
        short: `${subject.short}: ${operation.short}`,
        floorId: operation.scope === 'session' ? `${subject.sessionFloor}/floor-b` : `${subject.id}/floor-c`,
        run: (ctx) =>
          measureOn(
            ctx,
            () => openSubject(subject.id, ctx.url, { max: POOL_MAX, applicationName: APP_NAME }),
            (open, key) => operation.run(open, key),
            (open) => open.close(),
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

/** Every uncontended case, each right after the floor it is divided by. */
export function uncontendedCases(): BenchCase[] {
  const floors = floorCases()
  const pgFloors = floors.filter((c) => c.id.startsWith('pg/'))
  const pjsFloors = floors.filter((c) => c.id.startsWith('postgresjs/'))
  const pglock = pglockCases()
  const pglockOf = (id: SubjectId) =>
    pglock.filter((c) => c.id.startsWith(`pglock-${id}/`) || c.id === `${id}/floor-c`)
  return [
    ...pgFloors,
    ...pglockOf('pg'),
    advisoryLockCase(),
    ...pjsFloors,
    transactionFloorCase(
      'postgresjs',
      'postgres.js floor (c): sql.begin + xact lock',
      'postgres.js (c) sql.begin + xact lock',
    ),
    ...pglockOf('postgresjs'),
    ...pglockOf('kysely'),
    ...pglockOf('drizzle'),
    ...pglockOf('databases'),
  ]
}
