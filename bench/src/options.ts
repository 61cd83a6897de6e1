/** Command-line flags and the counts each mode runs with. */
import { parseArgs } from 'node:util'

/** How much work each case does in one round. */
export interface Counts {
  /** Rounds of the whole set of cases. */
  readonly rounds: number
  /** Operations per uncontended case, after `warmupOps` that are not measured. */
  readonly ops: number
  readonly warmupOps: number
  /** The same for advisory-lock, which opens a connection per lock (tens of times slower). */
  readonly advisoryLockOps: number
  readonly advisoryLockWarmupOps: number
  /** Worker counts of the contention cases. */
  readonly waiters: readonly number[]
  /** Measured window of each contention case, after `contentionWarmupMs` of the same loop. */
  readonly contentionMs: number
  readonly contentionWarmupMs: number
  /** Locks held at once in the connection cases, and in the heap case. */
  readonly heldLocks: number
  readonly heapLocks: number
  /** A held-locks case with no acquire completing for this long is reported as stalled. */
  readonly stallMs: number
  /** How long the app pool's `SELECT 1` may take while the locks are held before it counts as blocked. */
  readonly select1TimeoutMs: number
}

export interface BenchOptions {
  readonly counts: Counts
  readonly quick: boolean
  /** Run only the cases whose id contains one of these (and the floors they are compared with). */
  readonly only: readonly string[]
  /** Also copy the chart and the table to docs/ for the README. */
  readonly publish: boolean
}

const FULL: Counts = {
  rounds: 5,
  ops: 2_000,
  warmupOps: 200,
  advisoryLockOps: 200,
  advisoryLockWarmupOps: 20,
  waiters: [8, 64],
  contentionMs: 2_000,
  contentionWarmupMs: 1_000,
  heldLocks: 1_000,
  heapLocks: 10_000,
  stallMs: 1_000,
  select1TimeoutMs: 1_000,
}

/** The smoke mode: every case still runs, on tiny counts. */
const QUICK: Counts = {
  rounds: 2,
  ops: 40,
  warmupOps: 10,
  advisoryLockOps: 5,
  advisoryLockWarmupOps: 2,
  waiters: [8, 64],
  contentionMs: 250,
  contentionWarmupMs: 50,
  heldLocks: 100,
  heapLocks: 500,
  stallMs: 500,
  select1TimeoutMs: 500,
}

export const USAGE = `Usage: pnpm bench [--rounds N] [--quick] [--only SUBSTRING]... [--publish]

  --rounds N       rounds of the whole set of cases (default 5; 2 with --quick)
  --quick          smoke mode: tiny counts, every case still runs; exits non-zero only if a case throws
  --only TEXT      run only the cases whose id contains TEXT (repeatable); their floors run too
  --publish        also copy the chart and the table to docs/bench.svg and docs/bench.md
  --help           this text`

/** Parses the command line; throws with a message meant for the user on a bad flag. */
export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  // `pnpm bench -- --rounds 3` hands the script a leading `--`.
  const args = argv[0] === '--' ? argv.slice(1) : [...argv]
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      rounds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      publish: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return 'help'
  if (positionals.length > 0) throw new Error(`unexpected argument: ${positionals.join(' ')}`)
  const quick = values.quick ?? false
  const base = quick ? QUICK : FULL
  let rounds = base.rounds
  if (values.rounds !== undefined) {
    rounds = Number(values.rounds)
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer`)
  }
  if (quick && values.publish) throw new Error('--publish with --quick would publish smoke-test numbers')
  if (values.only !== undefined && values.publish)
    throw new Error('--publish with --only would publish a partial run')
  return { counts: { ...base, rounds }, quick, only: values.only ?? [], publish: values.publish ?? false }
}
