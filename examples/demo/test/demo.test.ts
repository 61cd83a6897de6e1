/**
 * Runs the demo the way `pnpm demo` does (the package's `start` script) and checks that it proves
 * what it claims, and that it leaves no worker, server or data directory behind.
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const demoDir = fileURLToPath(new URL('..', import.meta.url))

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
  readonly pid: number
}

/** The `start` script, with `node` being the node running the tests. */
function runDemo(): Promise<Run> {
  const pkg = JSON.parse(readFileSync(`${demoDir}/package.json`, 'utf8')) as { scripts: { start: string } }
  const [command, ...args] = pkg.scripts.start.split(' ')
  expect(command).toBe('node')
  // Without these the demo starts its own embedded PostgreSQL, which is what it is about.
  const { PGLOCK_TEST_DATABASE_URL: _url, PGLOCK_TEST_PG: _pg, ...env } = process.env
  const child = spawn(process.execPath, args, { cwd: demoDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, output, pid: child.pid ?? -1 }))
  })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

it('pnpm demo proves all three phases, exits 0 and leaves nothing behind', { timeout: 90_000 }, async () => {
  const run = await runDemo()
  const { output } = run
  expect(run, output).toMatchObject({ code: 0, signal: null })

  // Phase 1: one run per tick, checked by the demo in its job_runs table.
  expect(output).toMatch(/job_runs: each of the 5 ticks ran exactly once/)
  expect(output.match(/runs the nightly report for tick \d/g)).toHaveLength(5)
  expect(output.match(/skipped tick \d/g)).toHaveLength(10)

  // Phase 2: the locked round is exact.
  expect(output).toMatch(/with withLock: counter = 150 after 150 increments, exact/)

  // Phase 3: another worker took over within a second of the SIGKILL.
  const takeover = /took over ([\d.]+) ms after the kill/.exec(output)
  expect(takeover, output).not.toBeNull()
  expect(Number(takeover?.[1])).toBeLessThan(1000)

  expect(output).toMatch(/PostgreSQL stopped; no server process and no data directory left/)
  expect(output).toMatch(/all checks passed/)

  // And, seen from outside: no worker process, no server on the demo's port, no data directory.
  const workerPids = [...output.matchAll(/ready \(pid (\d+)\)/g)].map((m) => Number(m[1]))
  expect(workerPids).toHaveLength(3)
  for (const pid of workerPids) expect(isAlive(pid), `worker pid ${pid}`).toBe(false)
  const port = Number(/is up on 127\.0\.0\.1:(\d+)/.exec(output)?.[1])
  expect(port).toBeGreaterThan(0)
  expect(await accepts(port)).toBe(false)
  expect(readdirSync(tmpdir()).filter((name) => name.startsWith(`pglock-pg-${run.pid}-`))).toEqual([])
})
