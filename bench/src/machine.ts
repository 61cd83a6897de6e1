/** What the numbers were measured on. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, platform, release, totalmem } from 'node:os'
import type pg from 'pg'

export interface MachineInfo {
  readonly cpuModel: string
  readonly cores: number
  readonly memoryGiB: number
  readonly os: string
  readonly node: string
  readonly postgres: string
  readonly postgresSource: string
  /** The server settings that matter here, as the server reports them. */
  readonly settings: Readonly<Record<string, string>>
  /** Exact driver versions, from bench/package.json. */
  readonly drivers: Readonly<Record<string, string>>
  /** `git describe`-like commit of the work tree, with `-dirty` when tracked files have changes (besides docs/bench.*). */
  readonly commit: string
}

const DRIVERS = ['pg', 'postgres', 'kysely', 'drizzle-orm', '@databases/pg', 'advisory-lock']
const SETTINGS = [
  'max_connections',
  'max_locks_per_transaction',
  'max_prepared_transactions',
  'shared_buffers',
]

function commit(): string {
  try {
    const cwd = new URL('.', import.meta.url)
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim()
    // The chart and table this program publishes do not count: a second --publish run is not "dirty".
    // Nor do untracked files (scratch scripts): the bench measures the packages' tracked sources.
    const status = execFileSync(
      'git',
      [
        'status',
        '--porcelain',
        '--untracked-files=no',
        '--',
        ':/',
        ':(exclude,top)docs/bench.md',
        ':(exclude,top)docs/bench.svg',
      ],
      { cwd, encoding: 'utf8' },
    )
    const dirty = status.trim() !== ''
    return dirty ? `${head}-dirty` : head
  } catch {
    return 'unknown'
  }
}

function driverVersions(): Record<string, string> {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    dependencies?: Record<string, string>
    devDependencies?: Record<string, string>
  }
  const all = { ...manifest.dependencies, ...manifest.devDependencies }
  return Object.fromEntries(DRIVERS.map((name) => [name, all[name] ?? '?']))
}

export async function machineInfo(admin: pg.Client, postgresSource: string): Promise<MachineInfo> {
  const version = await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")
  const settings = await admin.query<{ name: string; setting: string; unit: string | null }>(
    'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)',
    [SETTINGS],
  )
  const cpu = cpus()
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    postgres: version.rows[0]?.v ?? 'unknown',
    postgresSource,
    settings: Object.fromEntries(
      settings.rows.map((row) => [
        row.name,
        row.unit === '8kB' ? `${(Number(row.setting) * 8) / 1024} MB` : row.setting,
      ]),
    ),
    drivers: driverVersions(),
    commit: commit(),
  }
}
