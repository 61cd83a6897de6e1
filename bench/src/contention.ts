/**
 * Contention: `workers` loops on one key, each acquire → release, for a fixed window. Raw blocking
 * `pg_advisory_lock` (each worker on a pg Client of its own) is the floor; pglock on pg and on
 * postgres.js, and a polling lock (`pg_try_advisory_lock`, sleep 10 ms, retry), are measured beside it.
 * Each implementation runs in a child process of its own (contention-process.ts), as in a service.
 */

import { type ChildProcess, fork } from 'node:child_process'
import { constants, type PerformanceEntry } from 'node:perf_hooks'
import { pgAdapter } from '@pglock/adapter-pg'
import { postgresjsAdapter } from '@pglock/adapter-postgresjs'
import { createLocker, type Locker, type LockHandle } from '@pglock/core'
import pg from 'pg'
import postgres from 'postgres'
import {
  ADMIN_MARKER,
  APP_NAME_PREFIX,
  type BenchCase,
  type ContentionSample,
  type RunContext,
} from './cases.js'
import { quantile } from './stats.js'
import { pgPool, postgresjsOptions } from './subjects.js'
import { randomKey, sleep, waitUntil, withDeadline } from './util.js'

const APP_NAME = `${APP_NAME_PREFIX}-contention`
/** How long the workers may take to finish their last turn once the window has closed. */
const DRAIN_MS = 60_000
/** The polling lock's pause between two tries. */
const POLL_INTERVAL_MS = 10

/** One worker's way to take and give back the contended lock. */
interface Contender {
  acquire(): Promise<void>
  release(): Promise<void>
}

/** The contenders of one case, opened (connections made) before the clock starts. */
export interface Arena {
  readonly contenders: readonly Contender[]
  /** Acquire → release cycles done while opening (warming connections). */
  readonly setupCycles: number
  close(): Promise<void>
}

interface Implementation {
  readonly id: string
  readonly label: string
  readonly short: string
  /** The implementation this one is compared with (the raw floor on the same driver); none for a floor. */
  readonly floor?: string
  open(ctx: Pick<RunContext, 'url' | 'admin'>, workers: number, key: bigint): Promise<Arena>
}

/** n connected pg Clients; none is left open when one of them cannot connect. */
async function connectClients(url: string, n: number): Promise<pg.Client[]> {
  const clients = Array.from({ length: n }, () => {
    const client = new pg.Client({ connectionString: url, application_name: APP_NAME })
    client.on('error', () => {})
    return client
  })
  const connected = await Promise.allSettled(clients.map((client) => client.connect()))
  const failed = connected.find((outcome) => outcome.status === 'rejected')
  if (failed !== undefined) {
    await Promise.allSettled(clients.map((client) => client.end()))
    throw failed.reason
  }
  return clients
}

/** An arena of n pg Clients, one per worker, each contender made from its client by `contender`. */
async function clientArena(
  url: string,
  workers: number,
  contender: (client: pg.Client) => Contender,
): Promise<Arena> {
  const clients = await connectClients(url, workers)
  return {
    setupCycles: 0,
    contenders: clients.map(contender),
    close: async () => {
      await Promise.all(clients.map((client) => client.end()))
    },
  }
}

const raw: Implementation = {
  id: 'raw',
  label: 'raw pg_advisory_lock (a pg Client per worker)',
  short: 'raw pg_advisory_lock',
  open({ url }, workers, key) {
    const k = String(key)
    return clientArena(url, workers, (client) => ({
      async acquire() {
        await client.query('SELECT pg_advisory_lock($1::bigint) IS NOT NULL AS acquired', [k])
      },
      async release() {
        await client.query('SELECT pg_advisory_unlock($1::bigint) AS released', [k])
      },
    }))
  },
}

const rawPostgresjs: Implementation = {
  id: 'raw-postgresjs',
  label: 'raw pg_advisory_lock on postgres.js (a reserved connection per worker)',
  short: 'raw pg_advisory_lock, postgres.js',
  async open({ url }, workers, key) {
    const sql = postgres(url, postgresjsOptions({ max: workers, applicationName: APP_NAME }))
    const k = String(key)
    try {
      const reserved = await Promise.all(Array.from({ length: workers }, () => sql.reserve()))
      return {
        setupCycles: 0,
        contenders: reserved.map((c) => ({
          async acquire() {
            await c`SELECT pg_advisory_lock(${k}::bigint) IS NOT NULL AS acquired`
          },
          async release() {
            await c`SELECT pg_advisory_unlock(${k}::bigint) AS released`
          },
        })),
        close: async () => {
          for (const c of reserved) c.release()
          await sql.end({ timeout: 5 })
        },
      }
    } catch (error) {
      await sql.end({ timeout: 5 })
      throw error
    }
  },
}

const polling: Implementation = {
  id: 'polling',
  floor: 'raw',
  label: `polling (pg_try_advisory_lock, ${POLL_INTERVAL_MS} ms sleep)`,
  short: `polling every ${POLL_INTERVAL_MS} ms`,
  open({ url }, workers, key) {
    const k = String(key)
    return clientArena(url, workers, (client) => ({
      async acquire() {
        for (;;) {
          const result = await client.query<{ acquired: boolean }>(
            'SELECT pg_try_advisory_lock($1::bigint) AS acquired',
            [k],
          )
          if (result.rows[0]?.acquired) return
          await sleep(POLL_INTERVAL_MS)
        }
      },
      async release() {
        await client.query('SELECT pg_advisory_unlock($1::bigint) AS released', [k])
      },
    }))
  },
}

/**
 * Contenders on one locker: each worker calls `locker.acquire(key)`, then `handle.release()`.
 *
 * Before the clock starts, every worker waits once behind a held lock, as in the loop: each blocking
 * wait runs on a connection of its own, so this opens the connections the workers will wait on.
 * (Uncontended warm-up acquires would not: they all share one connection.)
 */
async function lockerArena(
  locker: Locker<never>,
  admin: pg.Client,
  workers: number,
  key: bigint,
  close: () => Promise<void>,
): Promise<Arena> {
  try {
    const first = await locker.acquire(key)
    const turns = Array.from({ length: workers }, () => locker.acquire(key))
    const settled = Promise.allSettled(turns.map(async (turn) => (await turn).release()))
    try {
      if (!(await waitUntil(async () => (await waitersOn(admin, key)) === workers, DRAIN_MS))) {
        throw new Error(`the ${workers} warm-up acquires did not all wait on the server`)
      }
    } finally {
      await first.release()
    }
    const failed = (await settled).find((outcome) => outcome.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  } catch (error) {
    await close()
    throw error
  }
  return {
    setupCycles: workers + 1,
    contenders: Array.from({ length: workers }, () => {
      let handle: LockHandle | undefined
      return {
        async acquire() {
          handle = await locker.acquire(key)
        },
        async release() {
          await handle?.release()
          handle = undefined
        },
      }
    }),
    close,
  }
}

/** Sessions waiting (not yet granted) for the session-level advisory lock on `key`, per `pg_locks`. */
async function waitersOn(admin: pg.Client, key: bigint): Promise<number> {
  const unsigned = BigInt.asUintN(64, key)
  const result = await admin.query<{ n: number }>(
    `${ADMIN_MARKER} SELECT count(*)::int AS n FROM pg_locks
     WHERE locktype = 'advisory' AND NOT granted AND classid = $1::oid AND objid = $2::oid AND objsubid = 1`,
    [String(unsigned >> 32n), String(unsigned & 0xffffffffn)],
  )
  return result.rows[0]?.n ?? 0
}

const pglockPg: Implementation = {
  id: 'pglock-pg',
  floor: 'raw',
  label: 'pglock pg (one locker, pg Pool max = workers + 2)',
  short: 'pglock pg',
  async open({ url, admin }, workers, key) {
    const pool = pgPool(url, { max: workers + 2, applicationName: APP_NAME })
    const locker = createLocker(pgAdapter(pool))
    return lockerArena(locker, admin, workers, key, async () => {
      await locker.close()
      await pool.end()
    })
  },
}

const pglockPostgresjs: Implementation = {
  id: 'pglock-postgresjs',
  floor: 'raw-postgresjs',
  label: 'pglock postgres.js (one locker, max = workers + 2)',
  short: 'pglock postgres.js',
  async open({ url, admin }, workers, key) {
    const sql = postgres(url, postgresjsOptions({ max: workers + 2, applicationName: APP_NAME }))
    const locker = createLocker(postgresjsAdapter(sql))
    return lockerArena(locker, admin, workers, key, async () => {
      await locker.close()
      await sql.end({ timeout: 5 })
    })
  },
}

/**
 * A floor against itself: the same loop in an arena of its own, measured as a case beside that floor.
 * Its ratios are what the bench reads for two identical implementations, i.e. its own noise: a case's
 * ratio within their spread is no different from its floor as far as this machine can tell.
 */
function control(floor: Implementation, id: string, driver: string): Implementation {
  return {
    ...floor,
    id: `control-${id}`,
    floor: floor.id,
    label: `control: raw pg_advisory_lock on ${driver} against itself (the bench's noise)`,
    short: `control: raw on ${driver} again`,
  }
}

/** The implementations, each after its floor (the raw lock on the same driver). */
export const CONTENTION_IMPLEMENTATIONS: readonly Implementation[] = [
  raw,
  pglockPg,
  polling,
  rawPostgresjs,
  pglockPostgresjs,
  control(raw, 'pg', 'pg'),
  control(rawPostgresjs, 'postgresjs', 'postgres.js'),
]

/**
 * Windows a case with a floor splits its measured time into, taking turns with the floor's (which
 * goes first alternates too): the two then share the machine's drift, which on a small shared host
 * moves hand-offs per second by a quarter within a minute.
 */
const PAIRED_BLOCKS = 8

/** What the windows of one implementation add up to. */
export interface Tally {
  readonly perWorker: number[]
  readonly waits: number[]
  readonly handoffs: number[]
  /** Measured windows, in ms of performance.now(), for the GC pauses that start in them. */
  readonly windows: [number, number][]
  /** Time in the windows (ms), and the CPU time and wall time from each window's start to its last worker's stop. */
  windowMs: number
  cpuUs: number
  busyMs: number
  cycles: number
}

export function tally(workers: number, setupCycles: number): Tally {
  return {
    perWorker: new Array<number>(workers).fill(0),
    waits: [],
    handoffs: [],
    windows: [],
    windowMs: 0,
    cpuUs: 0,
    busyMs: 0,
    cycles: setupCycles,
  }
}

/** Runs the arena's workers for `durationMs`; with `into`, their acquisitions in that time count there. */
export async function drive(
  arena: Arena,
  durationMs: number,
  into: Tally,
  measured: boolean,
  label: string,
): Promise<void> {
  const startedAt = performance.now()
  const cpuAtStart = process.cpuUsage()
  const start = process.hrtime.bigint()
  const end = start + BigInt(Math.round(durationMs * 1e6))
  // Set by the holder just before it releases; the lock is exclusive, so one writer at a time.
  let previous: { worker: number; releaseStartedAt: bigint } | undefined
  const loop = async (worker: Contender, index: number) => {
    while (process.hrtime.bigint() < end) {
      const calledAt = process.hrtime.bigint()
      await worker.acquire()
      const heldAt = process.hrtime.bigint()
      into.cycles++
      if (measured && heldAt < end) {
        into.perWorker[index] = (into.perWorker[index] ?? 0) + 1
        into.waits.push(Number(heldAt - calledAt) / 1e6)
        // A worker that takes the lock back from itself (a poller retrying at once) hands nothing off.
        if (previous !== undefined && previous.worker !== index) {
          into.handoffs.push(Number(heldAt - previous.releaseStartedAt) / 1e6)
        }
      }
      previous = { worker: index, releaseStartedAt: process.hrtime.bigint() }
      await worker.release()
    }
  }
  await withDeadline(Promise.all(arena.contenders.map(loop)), durationMs + DRAIN_MS, label)
  if (!measured) return
  const cpu = process.cpuUsage(cpuAtStart)
  into.cpuUs += cpu.user + cpu.system
  into.busyMs += performance.now() - startedAt
  into.windowMs += durationMs
  into.windows.push([startedAt, startedAt + durationMs])
}

/** What the bench asks of an arena's process; each request is answered before the next is sent. */
export type ArenaRequest =
  | {
      readonly type: 'open'
      readonly implementation: string
      readonly url: string
      readonly workers: number
      readonly key: string
    }
  | { readonly type: 'drive'; readonly ms: number; readonly measured: boolean }
  | { readonly type: 'finish' }
  | { readonly type: 'close' }

type ArenaAnswer =
  | { readonly ok: true; readonly sample?: ContentionSample }
  | { readonly ok: false; readonly error: string }

const ARENA_PROCESS = new URL('./contention-process.ts', import.meta.url)
/** How long an arena's process may take to answer anything but a drive (opening connects every worker). */
const ANSWER_MS = 60_000

/** One implementation's arena in a child process of its own (same Node flags as the bench). */
class ArenaProcess {
  readonly #child: ChildProcess
  readonly #exited: Promise<string>

  private constructor(child: ChildProcess) {
    this.#child = child
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(`exited (${signal ?? `code ${code}`})`))
    })
  }

  static async start(): Promise<ArenaProcess> {
    const child = fork(ARENA_PROCESS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const arena = new ArenaProcess(child)
    try {
      await arena.#answer(ANSWER_MS, 'start')
    } catch (error) {
      child.kill('SIGKILL')
      throw error
    }
    return arena
  }

  request(message: ArenaRequest, ms = ANSWER_MS): Promise<ArenaAnswer & { ok: true }> {
    this.#child.send(message)
    return this.#answer(ms, message.type)
  }

  async #answer(ms: number, what: string): Promise<ArenaAnswer & { ok: true }> {
    let onMessage: ((answer: ArenaAnswer) => void) | undefined
    const answered = new Promise<ArenaAnswer>((resolve) => {
      onMessage = resolve
      this.#child.once('message', resolve)
    })
    try {
      const answer = await withDeadline(
        Promise.race([
          answered,
          this.#exited.then((how): ArenaAnswer => ({ ok: false, error: `the arena process ${how}` })),
        ]),
        ms,
        `the arena process's answer to ${what}`,
      )
      if (!answer.ok) throw new Error(answer.error)
      return answer
    } finally {
      if (onMessage !== undefined) this.#child.off('message', onMessage)
    }
  }

  /** Closes the arena, then lets the process end (killed when it does not within a few seconds). */
  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      await this.request({ type: 'close' }).catch(() => {})
      this.#child.disconnect()
      const ended = await Promise.race([this.#exited.then(() => true), sleep(5_000).then(() => false)])
      if (!ended) this.#child.kill('SIGKILL')
    }
  }
}

async function openArena(
  implementation: Implementation,
  url: string,
  workers: number,
): Promise<ArenaProcess> {
  const arena = await ArenaProcess.start()
  try {
    const key = String(randomKey())
    await arena.request({ type: 'open', implementation: implementation.id, url, workers, key })
    return arena
  } catch (error) {
    await arena.close()
    throw error
  }
}

async function runContention(
  implementation: Implementation,
  floor: Implementation | undefined,
  ctx: RunContext,
  workers: number,
): Promise<ContentionSample> {
  const run = (arena: ArenaProcess, ms: number, measured: boolean) =>
    arena.request({ type: 'drive', ms, measured }, ms + DRAIN_MS + ANSWER_MS)
  const finish = async (arena: ArenaProcess) => {
    const { sample } = await arena.request({ type: 'finish' })
    if (sample === undefined) throw new Error('the arena process sent no sample')
    return sample
  }
  const arena = await openArena(implementation, ctx.url, workers)
  let floorArena: ArenaProcess | undefined
  try {
    if (floor !== undefined) floorArena = await openArena(floor, ctx.url, workers)
    // The floor warms up first, so that the case's first window follows its own warm-up at once: a
    // pause longer than its adapter's idle timeout would close its connections (the postgres.js
    // adapter's was 1 s until it became 10 s; see bench/README.md).
    if (floorArena !== undefined) await run(floorArena, ctx.counts.contentionWarmupMs, false)
    await run(arena, ctx.counts.contentionWarmupMs, false)
    if (floorArena === undefined) {
      await run(arena, ctx.counts.contentionMs, true)
      return await finish(arena)
    }
    const blockMs = ctx.counts.contentionMs / PAIRED_BLOCKS
    for (let block = 0; block < PAIRED_BLOCKS; block++) {
      if (block % 2 === 1) await run(floorArena, blockMs, true)
      await run(arena, blockMs, true)
      if (block % 2 === 0) await run(floorArena, blockMs, true)
    }
    return { ...(await finish(arena)), paired: await finish(floorArena) }
  } finally {
    await arena.close()
    await floorArena?.close()
  }
}

export function contentionSample(
  workers: number,
  t: Tally,
  gc: readonly PerformanceEntry[],
): ContentionSample {
  let gcMs = 0
  let majorGcs = 0
  for (const entry of gc) {
    // Collections that start in a measured window (entries arrive a little later, with their start time).
    if (!t.windows.some(([from, to]) => entry.startTime >= from && entry.startTime < to)) continue
    gcMs += entry.duration
    const detail = (entry as { detail?: { kind?: number } }).detail
    if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs++
  }
  const acquisitions = t.perWorker.reduce((a, b) => a + b, 0)
  const seconds = t.windowMs / 1000
  return {
    kind: 'contention',
    workers,
    cycles: t.cycles,
    windowMs: t.windowMs,
    acquisitions,
    acquisitionsPerSec: acquisitions / seconds,
    handoffs: t.handoffs.length,
    handoffsPerSec: t.handoffs.length / seconds,
    waitP50Ms: quantile(t.waits, 0.5) ?? Number.NaN,
    waitP99Ms: quantile(t.waits, 0.99) ?? Number.NaN,
    handoffP50Ms: quantile(t.handoffs, 0.5) ?? Number.NaN,
    handoffP99Ms: quantile(t.handoffs, 0.99) ?? Number.NaN,
    perWorker: t.perWorker,
    minPerWorker: Math.min(...t.perWorker),
    maxPerWorker: Math.max(...t.perWorker),
    gcMsPerSec: gcMs / seconds,
    majorGcs,
    cpuCores: t.busyMs > 0 ? t.cpuUs / 1000 / t.busyMs : Number.NaN,
  }
}

/** Every contention case: for each worker count, the floor first. */
export function contentionCases(waiters: readonly number[]): BenchCase[] {
  return waiters.flatMap((workers) =>
    CONTENTION_IMPLEMENTATIONS.map(
      (implementation): BenchCase => ({
        id: `contention-${workers}/${implementation.id}`,
        section: 'contention',
        label: `${workers} waiters: ${implementation.label}`,
        short: `${workers} waiters: ${implementation.short}`,
        size: workers,
        ...(implementation.floor === undefined
          ? {}
          : { floorId: `contention-${workers}/${implementation.floor}` }),
        run: (ctx) =>
          runContention(
            implementation,
            CONTENTION_IMPLEMENTATIONS.find((floor) => floor.id === implementation.floor),
            ctx,
            workers,
          ),
      }),
    ),
  )
}
