/**
 * Many session locks held at once by one locker over a pg Pool of `max: 10`: how many connections hold
 * them (the server's view), whether the app can still use its pool, and the heap each held lock costs.
 *
 * While every held lock pins a pool connection, the 11th acquire waits for a connection forever: a
 * case in which no acquire completes for `stallMs` aborts the pending ones (their `signal`) and reports
 * "stalled", measuring what it holds at that point.
 */
import { setMaxListeners } from 'node:events'
import { pgAdapter } from '@pglock/adapter-pg'
import { createLocker, type Locker, type LockHandle } from '@pglock/core'
import type pg from 'pg'
import { ADMIN_MARKER, APP_NAME_PREFIX, type BenchCase, type HeldSample, type RunContext } from './cases.js'
import { pgPool } from './subjects.js'
import { exposedGc, randomKey, withDeadline } from './util.js'

const APP_NAME = `${APP_NAME_PREFIX}-held`
const POOL_MAX = 10
/** Bound on steps that should take milliseconds (releases, closing), so that a hang ends the case. */
const STEP_DEADLINE_MS = 60_000

type Mode = 'sequential' | 'concurrent' | 'heap'

/** Reason given to the aborted acquires of a stalled case. */
class StalledError extends Error {
  override readonly name = 'StalledError'
}

/**
 * An AbortSignal that aborts once no progress was reported for `stallMs`. `progress()` records one;
 * `stop()` ends the watch.
 */
function stallWatch(stallMs: number) {
  const controller = new AbortController()
  // Every pending acquire listens on it: 1,000 at once is the point, not a leak.
  setMaxListeners(0, controller.signal)
  let last = Date.now()
  const timer = setInterval(
    () => {
      if (Date.now() - last >= stallMs) {
        controller.abort(new StalledError(`no acquire completed for ${stallMs} ms`))
        clearInterval(timer)
      }
    },
    Math.min(100, stallMs / 4),
  )
  return {
    signal: controller.signal,
    progress: () => {
      last = Date.now()
    },
    stop: () => clearInterval(timer),
  }
}

/** Acquires `keys`, one after another or all at once, until done or stalled. */
async function acquireAll(
  locker: Locker<never>,
  keys: readonly bigint[],
  concurrent: boolean,
  stallMs: number,
): Promise<{ handles: LockHandle[]; stalled: boolean }> {
  const watch = stallWatch(stallMs)
  const handles: LockHandle[] = []
  try {
    if (concurrent) {
      const settled = await Promise.allSettled(
        keys.map(async (key) => {
          const handle = await locker.acquire(key, { signal: watch.signal })
          watch.progress()
          return handle
        }),
      )
      for (const outcome of settled) {
        if (outcome.status === 'fulfilled') handles.push(outcome.value)
        else if (!(outcome.reason instanceof StalledError)) throw outcome.reason
      }
    } else {
      for (const key of keys) {
        try {
          handles.push(await locker.acquire(key, { signal: watch.signal }))
        } catch (error) {
          if (error instanceof StalledError) break
          throw error
        }
        watch.progress()
      }
    }
    return { handles, stalled: watch.signal.aborted }
  } catch (error) {
    await Promise.allSettled(handles.map((handle) => handle.release()))
    throw error
  } finally {
    watch.stop()
  }
}

/** The server's view: connections of the app pool holding advisory locks, and the locks granted. */
async function serverView(admin: pg.Client): Promise<{ connections: number; locks: number }> {
  const result = await admin.query<{ connections: number; locks: number }>(
    `${ADMIN_MARKER} SELECT count(DISTINCT l.pid)::int AS connections, count(*)::int AS locks
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`,
    [APP_NAME],
  )
  return { connections: result.rows[0]?.connections ?? 0, locks: result.rows[0]?.locks ?? 0 }
}

function heapUsedAfterGc(collect: () => void): number {
  collect()
  collect()
  return process.memoryUsage().heapUsed
}

async function runHeld(ctx: RunContext, mode: Mode): Promise<HeldSample> {
  const requested = mode === 'heap' ? ctx.counts.heapLocks : ctx.counts.heldLocks
  const pool = pgPool(ctx.url, { max: POOL_MAX, applicationName: APP_NAME })
  const locker = createLocker(pgAdapter(pool))
  const base = randomKey()
  const keys = Array.from({ length: requested }, (_, i) => base + BigInt(i))
  try {
    // Warm the code paths and one connection, so that the heap baseline does not count them.
    await (await locker.acquire(randomKey())).release()
    const collect = mode === 'heap' ? exposedGc() : undefined
    const heapBefore = collect === undefined ? 0 : heapUsedAfterGc(collect)
    const start = performance.now()
    const acquired = await withDeadline(
      acquireAll(locker, keys, mode === 'concurrent', ctx.counts.stallMs),
      STEP_DEADLINE_MS + requested * 10,
      `acquiring ${requested} locks`,
    )
    const elapsedMs = performance.now() - start
    const handles = acquired.handles
    const heapAfter = collect === undefined ? 0 : heapUsedAfterGc(collect)

    const view = await serverView(ctx.admin)
    const poolTotalCount = pool.totalCount
    const select1Start = performance.now()
    const select1 = pool.query('SELECT 1 AS one')
    const served = await withDeadline(select1, ctx.counts.select1TimeoutMs, 'SELECT 1').then(
      () => true,
      () => false,
    )
    const select1Ms = served ? performance.now() - select1Start : null

    await withDeadline(
      Promise.all(handles.map((handle) => handle.release())),
      STEP_DEADLINE_MS,
      `releasing ${handles.length} locks`,
    )
    // A blocked SELECT 1 gets its connection once the locks are gone.
    await withDeadline(
      select1.catch(() => {}),
      STEP_DEADLINE_MS,
      'the app pool SELECT 1',
    )
    return {
      kind: 'held',
      requested,
      held: handles.length,
      stalled: acquired.stalled,
      elapsedMs,
      serverConnections: view.connections,
      serverLocks: view.locks,
      poolTotalCount,
      select1Served: served,
      select1Ms,
      heapBefore: collect === undefined ? null : heapBefore,
      heapAfter: collect === undefined ? null : heapAfter,
      heapBytesPerLock:
        collect === undefined || acquired.stalled || handles.length === 0
          ? null
          : (heapAfter - heapBefore) / handles.length,
    }
  } finally {
    await withDeadline(locker.close(), STEP_DEADLINE_MS, 'locker.close()').catch(() => {})
    await withDeadline(pool.end(), STEP_DEADLINE_MS, 'pool.end()').catch(() => {})
  }
}

/** The held-locks cases. */
export function heldCases(heldLocks: number, heapLocks: number): BenchCase[] {
  return [
    {
      id: 'held/sequential',
      section: 'held',
      label: `${heldLocks.toLocaleString('en-US')} locks held, acquired one after another (pg Pool max ${POOL_MAX})`,
      short: 'held, sequential',
      size: heldLocks,
      run: (ctx) => runHeld(ctx, 'sequential'),
    },
    {
      id: 'held/concurrent',
      section: 'held',
      label: `${heldLocks.toLocaleString('en-US')} locks held, acquired at once (Promise.all, pg Pool max ${POOL_MAX})`,
      short: 'held, concurrent',
      size: heldLocks,
      run: (ctx) => runHeld(ctx, 'concurrent'),
    },
    {
      id: 'held/heap',
      section: 'held',
      label: `heap per held lock at ${heapLocks.toLocaleString('en-US')} (pg Pool max ${POOL_MAX})`,
      short: 'heap per held lock',
      size: heapLocks,
      run: (ctx) => runHeld(ctx, 'heap'),
    },
  ]
}
