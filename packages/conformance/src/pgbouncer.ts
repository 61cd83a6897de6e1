/**
 * Starts PgBouncer (the Debian package's binary, or `PGLOCK_PGBOUNCER`) on loopback in front of a test
 * server, in transaction pooling mode: where session locks cannot work and transaction locks must.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'
import type { ConformanceHarness, ConformanceLimits } from './harness.js'

/** What the suite leaves out behind a pooler in transaction mode, for every adapter. */
export const TRANSACTION_POOLING_LIMITS = {
  noSessionLocks: 'a pooler in transaction mode gives each statement any server session',
} as const satisfies ConformanceLimits

/** A running PgBouncer. */
export interface PgBouncer {
  /** A URL like the server's, through PgBouncer. */
  readonly url: string
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject()))
    })
  })
}

/** Starts PgBouncer with `pool_mode = transaction` and `poolSize` server connections. */
export async function startPgBouncer(
  serverUrl: string,
  options: { poolSize?: number } = {},
): Promise<PgBouncer> {
  // Debian installs it in /usr/sbin, which is not on every PATH.
  const binary =
    process.env.PGLOCK_PGBOUNCER ?? (existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer')
  const server = new URL(serverUrl)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'pglock-pgbouncer-'))
  // PgBouncer refuses to run as root; started as root it switches to the `postgres` user (-u), which
  // must be able to read its configuration.
  chmodSync(dir, 0o755)
  const database = decodeURIComponent(server.pathname.slice(1)) || 'postgres'
  const config = join(dir, 'pgbouncer.ini')
  writeFileSync(
    config,
    [
      '[databases]',
      `${database} = host=${server.hostname} port=${server.port} dbname=${database} user=${decodeURIComponent(server.username)} password=${decodeURIComponent(server.password)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize ?? 4}`,
      'max_client_conn = 500',
      'ignore_startup_parameters = extra_float_digits,options',
      'server_round_robin = 0',
      '',
    ].join('\n'),
    { mode: 0o644 },
  )
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', config] : [config]
  let output = ''
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000)
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000)
  })
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(
          `could not start PgBouncer (${binary}): ${error.message}. Install it (Debian: apt-get install pgbouncer) or set PGLOCK_PGBOUNCER`,
          { cause: error },
        ),
      ),
    )
    child.once('exit', (code) => reject(new Error(`PgBouncer exited with code ${code}:\n${output}`)))
  })
  spawnError.catch(() => {})
  const url = new URL(serverUrl)
  url.port = String(port)
  url.hostname = '127.0.0.1'
  const deadline = performance.now() + 10_000
  for (;;) {
    const client = new pg.Client({ connectionString: url.toString() })
    client.on('error', () => {})
    try {
      await Promise.race([client.connect(), spawnError])
      await client.query('SELECT 1')
      await client.end()
      break
    } catch (error) {
      await client.end().catch(() => {})
      if (child.exitCode !== null || performance.now() > deadline) {
        child.kill('SIGKILL')
        rmSync(dir, { recursive: true, force: true })
        throw error instanceof Error && error.message.startsWith('could not start')
          ? error
          : new Error(`PgBouncer did not accept connections: ${String(error)}\n${output}`, { cause: error })
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  let stopped: Promise<void> | undefined
  return {
    url: url.toString(),
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGINT')
      }).finally(() => rmSync(dir, { recursive: true, force: true }))),
  }
}

/**
 * For a test file: starts PgBouncer before its tests and stops it after them, and wraps `harness` so
 * that the app's pool connects through PgBouncer rather than to `serverUrl`. `url()` is PgBouncer's
 * URL once it has started.
 */
export function throughPgBouncer<Tx>(
  serverUrl: string,
  harness: ConformanceHarness<Tx>,
  options: { poolSize?: number } = { poolSize: 4 },
): { readonly url: () => string; readonly harness: ConformanceHarness<Tx> } {
  let bouncer: PgBouncer | undefined
  beforeAll(async () => {
    bouncer = await startPgBouncer(serverUrl, options)
  }, 30_000)
  afterAll(async () => {
    await bouncer?.stop()
  })
  const url = (): string => {
    if (bouncer === undefined) throw new Error('throughPgBouncer: PgBouncer has not started yet')
    return bouncer.url
  }
  return {
    url,
    harness: {
      create: (created) => harness.create({ ...created, url: created.url.replace(serverUrl, url()) }),
    },
  }
}
