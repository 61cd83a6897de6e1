/** Helpers shared by the cases. */
import { randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { ADMIN_MARKER } from './cases.js'

export { sleep }

/** A random positive bigint key, so that no two cases (or runs) share a lock. */
export function randomKey(): bigint {
  // Leaves room below 2^63 for `key + i` in the cases that lock many consecutive keys.
  return (BigInt(randomInt(1, 2 ** 47)) << 8n) + 1n
}

/** Thrown by {@link withDeadline} when the operation did not settle in time. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError'
}

/** `promise`, or a rejection with {@link DeadlineError} after `ms` (the operation itself goes on). */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} did not finish within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Advisory locks currently in `pg_locks` (granted or awaited) on sessions of the bench. */
export async function benchAdvisoryLocks(admin: pg.Client, applicationName: string): Promise<number> {
  const result = await admin.query<{ n: number }>(
    `${ADMIN_MARKER} SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND a.application_name LIKE $1`,
    [`${applicationName}%`],
  )
  return result.rows[0]?.n ?? 0
}

/** Sessions with this application_name (prefix) that are still connected. */
export async function benchSessions(admin: pg.Client, applicationName: string): Promise<number> {
  const result = await admin.query<{ n: number }>(
    `${ADMIN_MARKER} SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()`,
    [`${applicationName}%`],
  )
  return result.rows[0]?.n ?? 0
}

/** Polls `condition` every 20 ms until it holds; false when `ms` passed first. */
export async function waitUntil(condition: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; ; ) {
    if (await condition()) return true
    if (Date.now() >= deadline) return false
    await sleep(20)
  }
}

/** `global.gc` when node runs with `--expose-gc` (the bench's start script does). */
export function exposedGc(): (() => void) | undefined {
  const collect = (globalThis as { gc?: () => void }).gc
  return typeof collect === 'function' ? collect : undefined
}

/** An error's message, for the report. */
export function describe(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') {
    return error.errors.map(describe).join('; ') || 'AggregateError'
  }
  if (error instanceof Error) return error.message === '' ? error.name : `${error.name}: ${error.message}`
  return String(error)
}
