/** The report as text (terminal) and as Markdown (docs/bench.md), from one set of tables. */
import type { MachineInfo } from './machine.js'
import type { Summary } from './summary.js'

interface Table {
  readonly title: string
  readonly note?: string
  readonly headers: readonly string[]
  /** 'r' for right-aligned (numeric) columns. */
  readonly align: readonly ('l' | 'r')[]
  readonly rows: readonly (readonly string[])[]
}

const num = (n: number | undefined, digits: number) =>
  n === undefined
    ? 'n/a'
    : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const ratio = (n: number | undefined) => (n === undefined ? '' : `${n.toFixed(2)}×`)

export interface ReportContext {
  readonly machine: MachineInfo
  readonly rounds: number
  readonly quick: boolean
  readonly counts: {
    readonly ops: number
    readonly warmupOps: number
    readonly advisoryLockOps: number
    readonly contentionMs: number
  }
}

function tables(summary: Summary, ctx: ReportContext): Table[] {
  const { counts } = ctx
  const result: Table[] = []
  if (summary.uncontended.length > 0) {
    result.push({
      title: 'Uncontended: µs per operation',
      note:
        `${counts.ops.toLocaleString('en-US')} operations after ${counts.warmupOps} warm-up ` +
        `(advisory-lock: ${counts.advisoryLockOps}); medians of ${ctx.rounds} rounds; ratio = median of the ` +
        'per-round case ÷ floor, where a pglock case runs its floor in the same window, in blocks of 100 ' +
        "operations taking turns with its own (floor µs/op is that run's); CPU = this process's CPU time per operation (the client-side cost); " +
        'stmts = statements the server ran per operation (pg_stat_statements).',
      headers: ['case', 'µs/op', 'p99 µs', 'CPU µs/op', 'stmts/op', 'floor', 'floor µs/op', 'ratio'],
      align: ['l', 'r', 'r', 'r', 'r', 'l', 'r', 'r'],
      rows: summary.uncontended.map((r) => [
        r.label,
        num(r.usPerOp, 1),
        num(r.p99Us, 1),
        num(r.cpuUsPerOp, 1),
        num(r.statementsPerOp, 2),
        r.floorId ?? '',
        r.floorId === undefined ? '' : num(r.floorUsPerOp, 1),
        ratio(r.ratio),
      ]),
    })
  }
  if (summary.contention.length > 0) {
    result.push({
      title: 'Contention: workers looping acquire → release on one key',
      note: [
        `${counts.contentionMs.toLocaleString('en-US')} ms window per round; medians of ${ctx.rounds} rounds.`,
        'hand-off = an acquisition by another worker than the previous holder (a poller that takes the lock',
        'back at once hands nothing off); hand-off ms = from the holder starting its release to the next holder',
        'holding; wait = from calling acquire to holding; min/max = acquisitions of the least and most served',
        "worker, in the least fair round; Node CPU = the CPU use of the arena's own process in the window (100 % = one core);",
        'GC = its garbage-collection pauses in ms per second of window, and (in brackets) how many were full',
        'collections, which come often when short-lived objects get promoted;',
        'stmts/cycle = statements the server ran per acquire → release (all cycles of the case); ÷ raw =',
        'median of the per-round ratios to raw pg_advisory_lock on the same driver.',
      ].join(' '),
      headers: [
        'case',
        'acquisitions/s',
        'hand-offs/s',
        'wait p50 ms',
        'wait p99 ms',
        'hand-off p50 ms',
        'min/max per worker',
        'Node CPU',
        'GC ms/s (full)',
        'stmts/cycle',
        'hand-offs ÷ raw',
        'p99 ÷ raw',
      ],
      align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      rows: summary.contention.map((r) => [
        r.label,
        num(r.acquisitionsPerSec, 0),
        num(r.handoffsPerSec, 0),
        num(r.waitP50Ms, 2),
        num(r.waitP99Ms, 2),
        num(r.handoffP50Ms, 2),
        r.minPerWorker === undefined ? 'n/a' : `${r.minPerWorker}/${r.maxPerWorker}`,
        r.cpuCores === undefined ? 'n/a' : `${Math.round(r.cpuCores * 100)} %`,
        r.gcMsPerSec === undefined ? 'n/a' : `${num(r.gcMsPerSec, 1)} (${r.majorGcs ?? 'n/a'})`,
        num(r.statementsPerCycle, 2),
        ratio(r.handoffRatio),
        ratio(r.p99Ratio),
      ]),
    })
  }
  if (summary.held.length > 0) {
    result.push({
      title: 'Held session locks: one locker over a pg Pool of max 10',
      note:
        'connections and locks per pg_locks (advisory, granted, sessions of that pool; most connections and ' +
        'fewest locks over the rounds); SELECT 1 = the same pool answered while the locks were held; ' +
        'stalled = no acquire completed for a while, the pending ones were aborted.',
      headers: [
        'case',
        'held',
        'stalled',
        'connections',
        'locks',
        'pool.totalCount',
        'SELECT 1',
        'heap B/lock',
      ],
      align: ['l', 'r', 'l', 'r', 'r', 'r', 'l', 'r'],
      rows: summary.held.map((r) => [
        r.label,
        `${r.held ?? 'n/a'}/${r.requested ?? '?'}`,
        r.stalled ? 'stalled' : 'no',
        String(r.serverConnections ?? 'n/a'),
        String(r.serverLocks ?? 'n/a'),
        String(r.poolTotalCount ?? 'n/a'),
        r.select1Served === undefined ? 'n/a' : r.select1Served ? 'served' : 'blocked',
        r.id === 'held/heap' ? num(r.heapBytesPerLock, 0) : '',
      ]),
    })
  }
  if (summary.targets.length > 0) {
    result.push({
      title: 'Targets',
      note:
        'value = the median over the rounds of the per-round ratio; rounds = the lowest and highest of those ' +
        (summary.controls.length > 0
          ? 'ratios (see the controls below for what identical implementations read).'
          : 'ratios.') +
        (ctx.quick ? ' Quick (smoke) run: counts too small for the targets to mean anything.' : ''),
      headers: ['target', 'value', 'rounds', 'bar', 'result'],
      align: ['l', 'r', 'r', 'l', 'l'],
      rows: summary.targets.map((t) => [
        t.name,
        t.value,
        t.rounds,
        t.target,
        t.pass === undefined ? 'NO DATA' : t.pass ? 'PASS' : 'FAIL',
      ]),
    })
  }
  if (summary.controls.length > 0) {
    result.push({
      title: 'Controls: each raw floor against itself',
      note:
        'Each floor measured against itself exactly as a pglock case is measured against it (uncontended: ' +
        "a second pool whose blocks of operations take turns with the floor's; contention: the same loop in " +
        'an arena of its own): what two identical implementations read here. A ratio inside their spread is ' +
        'no difference this machine can show; value = the median of the per-round ratios, rounds = their ' +
        'lowest and highest.',
      headers: ['control', 'ratio', 'value', 'rounds'],
      align: ['l', 'l', 'r', 'r'],
      rows: summary.controls.map((c) => [c.name, c.measure, c.value, c.rounds]),
    })
  }
  return result
}

function machineLines(ctx: ReportContext): string[] {
  const m = ctx.machine
  const drivers = Object.entries(m.drivers)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')
  const settings = Object.entries(m.settings)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ')
  return [
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node.js ${m.node}`,
    `PostgreSQL ${m.postgres} (${m.postgresSource}; ${settings})`,
    `Drivers: ${drivers}; pglock at ${m.commit}`,
  ]
}

function textTable(table: Table): string {
  const widths = table.headers.map((h, i) =>
    Math.max(h.length, ...table.rows.map((row) => (row[i] ?? '').length)),
  )
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (table.align[i] === 'r' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [
    table.title,
    ...(table.note === undefined ? [] : [wrap(table.note, 110)]),
    '',
    line(table.headers),
    line(widths.map((w) => '-'.repeat(w))),
    ...table.rows.map(line),
  ].join('\n')
}

function wrap(text: string, width: number): string {
  const lines: string[] = []
  let current = ''
  for (const word of text.split(' ')) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current)
      current = word
    } else current = current === '' ? word : `${current} ${word}`
  }
  if (current !== '') lines.push(current)
  return lines.join('\n')
}

/** The report for the terminal. */
export function renderText(summary: Summary, ctx: ReportContext): string {
  return [machineLines(ctx).join('\n'), ...tables(summary, ctx).map(textTable)].join('\n\n')
}

function markdownTable(table: Table): string {
  const cellText = (cell: string) => cell.replaceAll('|', '\\|')
  return [
    `### ${table.title}`,
    '',
    ...(table.note === undefined ? [] : [table.note, '']),
    `| ${table.headers.map(cellText).join(' | ')} |`,
    `|${table.align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`,
    ...table.rows.map((row) => `| ${row.map(cellText).join(' | ')} |`),
  ].join('\n')
}

/** The report as Markdown, for docs/bench.md. */
export function renderMarkdown(summary: Summary, ctx: ReportContext, date: string): string {
  return [
    '<!-- Generated by `pnpm bench --publish` (bench/src/main.ts); do not edit by hand. -->',
    '',
    `## pglock benchmark (${date})`,
    '',
    ...machineLines(ctx).map((line) => `${line}  `),
    '',
    ...tables(summary, ctx).flatMap((table) => [markdownTable(table), '']),
  ].join('\n')
}
