import { randomBytes } from 'node:crypto'
import { type LockKey, lockKey } from '@pglock/core'
import pg from 'pg'

/** A lock as the server shows it in `pg_locks`. */
export interface ServerLock {
  readonly pid: number
  readonly mode: 'ExclusiveLock' | 'ShareLock'
  readonly granted: boolean
  readonly applicationName: string | null
}

/** The suite's own connection to the server, for checking what the server sees and injecting faults. */
export class Admin {
  readonly #client: pg.Client
  readonly #url: string

  private constructor(client: pg.Client, url: string) {
    this.#client = client
    this.#url = url
  }

  static async connect(url: string): Promise<Admin> {
    const client = new pg.Client({ connectionString: url, application_name: 'pglock-conformance-admin' })
    client.on('error', () => {
      // The admin connection is never the target of a fault; a failure shows up on its next query.
    })
    await client.connect()
    return new Admin(client, url)
  }

  async query<R = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
    return (await this.#client.query(text, params)).rows as R[]
  }

  /** Every `pg_locks` row for `key` (granted or waiting), in this database. */
  async locks(key: LockKey): Promise<ServerLock[]> {
    const [classid, objid, objsubid] = identity(key)
    return this.query<ServerLock>(
      `SELECT l.pid, l.mode, l.granted, a.application_name AS "applicationName"
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = $3::int2
        ORDER BY l.granted DESC, l.pid`,
      [classid, objid, objsubid],
    )
  }

  /** Granted advisory locks held by backends whose application_name is `app`. */
  async heldBy(app: string): Promise<number> {
    const rows = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`,
      [app],
    )
    return rows[0]?.n ?? 0
  }

  /** The backends of `app` holding granted advisory locks, with how many each holds. */
  async holders(app: string): Promise<{ pid: number; locks: number }[]> {
    return this.query(
      `SELECT l.pid, count(*)::int AS locks FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1
        GROUP BY l.pid ORDER BY l.pid`,
      [app],
    )
  }

  /** Backends of `app` waiting for an advisory lock. */
  async waiting(app: string): Promise<number[]> {
    const rows = await this.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
      [app],
    )
    return rows.map((r) => r.pid)
  }

  /** The backends of `app`, with their state. */
  async backends(app: string): Promise<{ pid: number; state: string | null }[]> {
    return this.query(`SELECT pid, state FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid`, [
      app,
    ])
  }

  /** Ends a backend as an administrator would (`57P01` for its client). */
  async terminate(pid: number): Promise<void> {
    await this.query('SELECT pg_terminate_backend($1::int4)', [pid])
  }

  /**
   * Holds `key` on a connection of its own, straight to the server (whatever the adapter under test
   * goes through), until `release()`: a contender for tests of the other side.
   */
  async hold(key: LockKey, options: { shared?: boolean } = {}): Promise<{ release(): Promise<void> }> {
    const client = new pg.Client({
      connectionString: this.#url,
      application_name: 'pglock-conformance-holder',
    })
    client.on('error', () => {})
    await client.connect()
    const args = key.kind === 'bigint' ? '$1::bigint' : '$1::int4, $2::int4'
    const params = key.kind === 'bigint' ? [String(key.key)] : [String(key.key1), String(key.key2)]
    await client.query(`SELECT pg_advisory_lock${options.shared ? '_shared' : ''}(${args})`, params)
    return {
      // Unlock before ending: a closing backend frees its locks only once it has exited.
      release: async () => {
        await client.query('SELECT pg_advisory_unlock_all()')
        await client.end()
      },
    }
  }

  async close(): Promise<void> {
    await this.#client.end()
  }
}

function identity(key: LockKey): [string, string, string] {
  if (key.kind === 'bigint') {
    const u = BigInt.asUintN(64, key.key)
    return [String(u >> 32n), String(u & 0xffffffffn), '1']
  }
  return [String(key.key1 >>> 0), String(key.key2 >>> 0), '2']
}

/** A fresh random bigint key, so that tests never share a lock. */
export function randomKey(): LockKey {
  return lockKey(randomBytes(8).readBigInt64BE())
}

/** A fresh random pair key. */
export function randomPairKey(): LockKey {
  return lockKey([randomBytes(4).readInt32BE(), randomBytes(4).readInt32BE()])
}

/** A unique application_name for one adapter instance. */
export function appName(label: string): string {
  return `pglock-${label}-${randomBytes(4).toString('hex')}`
}

/** Polls `condition` until it holds, failing after `timeoutMs` (tests wait for conditions, never sleep). */
export async function waitFor(
  what: string,
  condition: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
