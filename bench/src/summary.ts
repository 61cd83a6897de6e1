/**
 * From the samples of every round to the reported numbers: medians across rounds, ratios paired round
 * by round (case / its floor in the same round, then the median of those ratios), and the targets.
 */
import type { BenchCase, ContentionSample, HeldSample, Sample, UncontendedSample } from './cases.js'
import { median, range } from './stats.js'

/** Everything one case produced: a sample (or an error) per round. */
export interface CaseResult
  extends Pick<BenchCase, 'id' | 'section' | 'label' | 'short' | 'floorId' | 'size'> {
  /** Index = round - 1; null where the round threw (see `errors`). */
  readonly samples: (Sample | null)[]
  /** Statements the server ran for the case in each round (pg_stat_statements); null when unknown. */
  readonly statements: (number | null)[]
  /** Wall time of each round of the case, set-up and tear-down included. */
  readonly wallMs: number[]
  readonly errors: { readonly round: number; readonly message: string }[]
}

export interface UncontendedRow {
  readonly id: string
  readonly label: string
  readonly short: string
  readonly rounds: number
  readonly usPerOp: number | undefined
  readonly p99Us: number | undefined
  /** This process's CPU time per operation (the client-side cost). */
  readonly cpuUsPerOp: number | undefined
  /** Statements the server ran per operation (warm-up and connection set-up included). */
  readonly statementsPerOp: number | undefined
  readonly floorId: string | undefined
  readonly floorLabel: string | undefined
  readonly floorUsPerOp: number | undefined
  /** Median over rounds of (case ns/op) / (floor ns/op). */
  readonly ratio: number | undefined
  /** That ratio in each round (index = round - 1; NaN where a round has none). */
  readonly roundRatios: readonly number[]
}

export interface ContentionRow {
  readonly id: string
  readonly label: string
  readonly short: string
  readonly workers: number
  readonly rounds: number
  readonly acquisitionsPerSec: number | undefined
  readonly handoffsPerSec: number | undefined
  readonly waitP50Ms: number | undefined
  readonly waitP99Ms: number | undefined
  readonly handoffP50Ms: number | undefined
  /** Fewest and most acquisitions of one worker, in the round where they were furthest apart (min ÷ max). */
  readonly minPerWorker: number | undefined
  readonly maxPerWorker: number | undefined
  /** Fewest acquisitions of one worker in any round: 0 means a worker starved. */
  readonly starvedMin: number | undefined
  /** This process's CPU use during the window, in cores. */
  readonly cpuCores: number | undefined
  /** Garbage-collection pause per second of window, and full collections in the window (medians). */
  readonly gcMsPerSec: number | undefined
  readonly majorGcs: number | undefined
  /** Statements the server ran per acquire → release cycle. */
  readonly statementsPerCycle: number | undefined
  readonly floorId: string | undefined
  /** Median over rounds of case / raw, for hand-offs per second and for p99 wait. */
  readonly handoffRatio: number | undefined
  readonly p99Ratio: number | undefined
  /** Those ratios in each round (index = round - 1; NaN where a round has none). */
  readonly handoffRoundRatios: readonly number[]
  readonly p99RoundRatios: readonly number[]
}

export interface HeldRow {
  readonly id: string
  readonly label: string
  readonly short: string
  readonly rounds: number
  readonly requested: number | undefined
  /** Fewest locks held in any round. */
  readonly held: number | undefined
  /** Stalled in at least one round. */
  readonly stalled: boolean
  /** Most connections holding advisory locks in any round (server's view). */
  readonly serverConnections: number | undefined
  readonly serverLocks: number | undefined
  readonly poolTotalCount: number | undefined
  /** The app pool answered SELECT 1 in every round. */
  readonly select1Served: boolean | undefined
  readonly heapBytesPerLock: number | undefined
}

export interface TargetRow {
  readonly name: string
  readonly value: string
  readonly target: string
  /** The lowest and highest of the per-round values the median `value` is taken over, if any. */
  readonly rounds: string
  /** undefined: no data (the case threw in every round, or was not run). */
  readonly pass: boolean | undefined
}

/**
 * A floor measured against itself (see `control` in contention.ts and uncontended.ts): the ratios two
 * identical implementations read, the resolution of the bench's ratios on this machine.
 */
export interface ControlRow {
  readonly name: string
  /** What is divided, e.g. "µs/op ÷ floor". */
  readonly measure: string
  /** Median of the per-round ratios, and their lowest and highest. */
  readonly value: string
  readonly rounds: string
}

export interface Summary {
  readonly uncontended: UncontendedRow[]
  readonly contention: ContentionRow[]
  readonly held: HeldRow[]
  readonly targets: TargetRow[]
  readonly controls: ControlRow[]
}

/** The bars the targets are set at; targets are the brief's, nothing else is judged. */
export const TARGETS = {
  /** pglock (pg, postgres.js) uncontended acquire + release ÷ the driver's pool checkout + lock + unlock + release. */
  acquireOverFloor: 1.15,
  /** A timed acquire ÷ an untimed one (both + release). */
  timedOverUntimed: 1.15,
  /** pglock (pg) uncontended lock + unlock throughput ÷ advisory-lock's. */
  advisoryLockSpeedup: 20,
  /** pglock hand-offs/s ÷ raw pg_advisory_lock's, same worker count. */
  handoffRatio: 0.9,
  /** pglock p99 wait ÷ raw's. */
  p99Ratio: 1,
  /** Connections holding the 1,000 held locks. */
  heldConnections: 2,
  /** Heap per held lock at 10,000 held. */
  heapBytesPerLock: 2048,
} as const

function of<S extends Sample>(result: CaseResult | undefined, kind: S['kind']): (S | null)[] {
  return (result?.samples ?? []).map((s) => (s !== null && s.kind === kind ? (s as S) : null))
}

function present<T>(values: readonly (T | null | undefined)[]): T[] {
  return values.filter((v): v is T => v !== null && v !== undefined)
}

/** metric(case) / metric(floor) in each round (NaN where either has no sample). */
function pairedRatios<S extends Sample>(
  cases: readonly (S | null)[],
  floors: readonly (S | null)[],
  metric: (s: S) => number,
): number[] {
  return cases.map((sample, round) => {
    const floor = floors[round]
    if (sample === null || floor === null || floor === undefined) return Number.NaN
    return metric(sample) / metric(floor)
  })
}

/** The min/max acquisitions per worker of the round where they were furthest apart. */
function leastFairRound(samples: readonly ContentionSample[]): {
  minPerWorker: number | undefined
  maxPerWorker: number | undefined
} {
  let worst: ContentionSample | undefined
  const fairness = (s: ContentionSample) => (s.maxPerWorker === 0 ? 1 : s.minPerWorker / s.maxPerWorker)
  for (const s of samples) if (worst === undefined || fairness(s) < fairness(worst)) worst = s
  return { minPerWorker: worst?.minPerWorker, maxPerWorker: worst?.maxPerWorker }
}

/**
 * Median over rounds of the case's statements ÷ units of work (operations, cycles); `others` are
 * statements of that round that were not the case's (its paired floor's), or NaN when unknown.
 */
function perUnit<S extends Sample>(
  result: CaseResult,
  samples: readonly (S | null)[],
  units: (s: S) => number,
  others: (s: S, round: number) => number = () => 0,
): number | undefined {
  return median(
    present(
      samples.map((s, round) => {
        const statements = result.statements[round]
        if (s === null || statements === null || statements === undefined) return null
        const perUnit = (statements - others(s, round)) / units(s)
        return Number.isFinite(perUnit) ? perUnit : null
      }),
    ),
  )
}

/**
 * The floor's statements in a round of a case that ran it alongside (the units of work it did there,
 * `pairedUnits`, times the floor's own statements per unit in that round); 0 when the case ran no
 * floor alongside, NaN when the floor's count is unknown.
 */
function pairedFloorStatements<S extends Sample>(
  pairedUnits: number | undefined,
  floor: CaseResult | undefined,
  floorSamples: readonly (S | null)[],
  round: number,
  units: (s: S) => number,
): number {
  if (pairedUnits === undefined) return 0
  const floorSample = floorSamples[round]
  const floorStatements = floor?.statements[round]
  if (floorSample === null || floorSample === undefined || floorStatements == null) return Number.NaN
  return (floorStatements / units(floorSample)) * pairedUnits
}

/**
 * metric(case) / metric(floor) in each round (NaN where there is none): of the floor run alongside in
 * the same round when the case has one (see `ContentionSample.paired`), else of the floor case's own run.
 */
function contentionRatios(
  samples: readonly (ContentionSample | null)[],
  floor: CaseResult | undefined,
  floorSamples: readonly (ContentionSample | null)[],
  metric: (s: Omit<ContentionSample, 'paired'>) => number,
): number[] {
  if (floor === undefined) return []
  if (!present(samples).some((s) => s.paired !== undefined))
    return pairedRatios(samples, floorSamples, metric)
  return samples.map((s) => (s?.paired === undefined ? Number.NaN : metric(s) / metric(s.paired)))
}

export function summarise(results: readonly CaseResult[]): Summary {
  const byId = new Map(results.map((r) => [r.id, r]))

  const uncontended = results
    .filter((r) => r.section === 'uncontended')
    .map((r): UncontendedRow => {
      const samples = of<UncontendedSample>(r, 'uncontended')
      const floor = r.floorId === undefined ? undefined : byId.get(r.floorId)
      const floorSamples = of<UncontendedSample>(floor, 'uncontended')
      const us = (s: UncontendedSample) => s.nsPerOp / 1000
      // A case that ran its floor alongside is divided by that run of the floor, round by round.
      const paired = present(samples).some((s) => s.paired !== undefined)
      const pairedFloorNs = (s: UncontendedSample) => s.paired?.floorNsPerOp ?? Number.NaN
      const roundRatios = paired
        ? samples.map((s) => (s === null ? Number.NaN : s.nsPerOp / pairedFloorNs(s)))
        : floor === undefined
          ? []
          : pairedRatios(samples, floorSamples, (s) => s.nsPerOp)
      return {
        id: r.id,
        label: r.label,
        short: r.short,
        rounds: present(samples).length,
        usPerOp: median(present(samples).map(us)),
        p99Us: median(present(samples).map((s) => s.p99Ns / 1000)),
        cpuUsPerOp: median(present(samples).map((s) => s.cpuNsPerOp / 1000)),
        statementsPerOp: perUnit(
          r,
          samples,
          (s) => s.totalOps,
          (s, round) =>
            pairedFloorStatements(s.paired?.floorTotalOps, floor, floorSamples, round, (f) => f.totalOps),
        ),
        floorId: r.floorId,
        floorLabel: floor?.label,
        floorUsPerOp: paired
          ? median(present(samples).map((s) => pairedFloorNs(s) / 1000))
          : median(present(floorSamples).map(us)),
        ratio: median(roundRatios),
        roundRatios,
      }
    })

  const contention = results
    .filter((r) => r.section === 'contention')
    .map((r): ContentionRow => {
      const samples = of<ContentionSample>(r, 'contention')
      const got = present(samples)
      const floor = r.floorId === undefined ? undefined : byId.get(r.floorId)
      const floorSamples = of<ContentionSample>(floor, 'contention')
      const handoffRoundRatios = contentionRatios(samples, floor, floorSamples, (s) => s.handoffsPerSec)
      const p99RoundRatios = contentionRatios(samples, floor, floorSamples, (s) => s.waitP99Ms)
      return {
        id: r.id,
        label: r.label,
        short: r.short,
        workers: got[0]?.workers ?? r.size ?? Number.NaN,
        rounds: got.length,
        acquisitionsPerSec: median(got.map((s) => s.acquisitionsPerSec)),
        handoffsPerSec: median(got.map((s) => s.handoffsPerSec)),
        waitP50Ms: median(got.map((s) => s.waitP50Ms)),
        waitP99Ms: median(got.map((s) => s.waitP99Ms)),
        handoffP50Ms: median(got.map((s) => s.handoffP50Ms)),
        ...leastFairRound(got),
        starvedMin: got.length === 0 ? undefined : Math.min(...got.map((s) => s.minPerWorker)),
        cpuCores: median(got.map((s) => s.cpuCores)),
        gcMsPerSec: median(got.map((s) => s.gcMsPerSec)),
        majorGcs: median(got.map((s) => s.majorGcs)),
        statementsPerCycle: perUnit(
          r,
          samples,
          (s) => s.cycles,
          (s, round) => pairedFloorStatements(s.paired?.cycles, floor, floorSamples, round, (f) => f.cycles),
        ),
        floorId: r.floorId,
        handoffRatio: median(handoffRoundRatios),
        p99Ratio: median(p99RoundRatios),
        handoffRoundRatios,
        p99RoundRatios,
      }
    })

  const held = results
    .filter((r) => r.section === 'held')
    .map((r): HeldRow => {
      const got = present(of<HeldSample>(r, 'held'))
      const none = got.length === 0
      return {
        id: r.id,
        label: r.label,
        short: r.short,
        rounds: got.length,
        requested: got[0]?.requested ?? r.size,
        held: none ? undefined : Math.min(...got.map((s) => s.held)),
        stalled: got.some((s) => s.stalled),
        serverConnections: none ? undefined : Math.max(...got.map((s) => s.serverConnections)),
        serverLocks: none ? undefined : Math.min(...got.map((s) => s.serverLocks)),
        poolTotalCount: none ? undefined : Math.max(...got.map((s) => s.poolTotalCount)),
        select1Served: none ? undefined : got.every((s) => s.select1Served),
        heapBytesPerLock: median(present(got.map((s) => s.heapBytesPerLock))),
      }
    })

  return {
    uncontended,
    contention,
    held,
    targets: targets(uncontended, contention, held),
    controls: controls(uncontended, contention),
  }
}

const times = (n: number | undefined, digits = 2) => (n === undefined ? 'n/a' : `${n.toFixed(digits)}×`)

/** The lowest and highest per-round values, as `0.82–1.02×`; '' when there are none. */
function spread(values: readonly number[], digits = 2): string {
  const r = range(values)
  return r === undefined ? '' : `${r[0].toFixed(digits)}–${r[1].toFixed(digits)}×`
}

/** `times` for a value beside its bar: more digits when two would print a value that misses the bar as the bar. */
function timesAgainst(n: number | undefined, bar: number): string {
  let digits = 2
  while (n !== undefined && n !== bar && digits < 4 && n.toFixed(digits) === bar.toFixed(digits)) digits++
  return times(n, digits)
}

function targets(
  uncontended: readonly UncontendedRow[],
  contention: readonly ContentionRow[],
  held: readonly HeldRow[],
): TargetRow[] {
  const rows: TargetRow[] = []
  for (const [adapter, name] of [
    ['pg', 'pg'],
    ['postgresjs', 'postgres.js'],
  ] as const) {
    const acquire = uncontended.find((r) => r.id === `pglock-${adapter}/acquire`)
    const timed = uncontended.find((r) => r.id === `pglock-${adapter}/timed-acquire`)
    if (acquire !== undefined) {
      rows.push({
        name: `uncontended, pglock ${name}: acquire + release ÷ floor (b)`,
        value: timesAgainst(acquire.ratio, TARGETS.acquireOverFloor),
        rounds: spread(acquire.roundRatios),
        target: `≤ ${TARGETS.acquireOverFloor.toFixed(2)}×`,
        pass: acquire.ratio === undefined ? undefined : acquire.ratio <= TARGETS.acquireOverFloor,
      })
    }
    // Both are paired with the same floor in every round, so the quotient of their ratios pairs them too:
    // the value is the median of the per-round quotients, like every other ratio.
    const quotients =
      acquire === undefined || timed === undefined
        ? []
        : timed.roundRatios.map((t, round) => t / (acquire.roundRatios[round] ?? Number.NaN))
    const ratio = median(quotients)
    if (ratio !== undefined) {
      rows.push({
        name: `uncontended, pglock ${name}: timed acquire ÷ untimed`,
        value: timesAgainst(ratio, TARGETS.timedOverUntimed),
        rounds: spread(quotients),
        target: `≤ ${TARGETS.timedOverUntimed.toFixed(2)}×`,
        pass: ratio <= TARGETS.timedOverUntimed,
      })
    }
  }
  const advisory = uncontended.find((r) => r.id === 'advisory-lock/lock-unlock')
  if (advisory !== undefined) {
    rows.push({
      name: 'uncontended lock+unlock: pglock (pg) throughput ÷ advisory-lock',
      value: times(advisory.ratio, 1),
      rounds: spread(advisory.roundRatios, 1),
      target: `≥ ${TARGETS.advisoryLockSpeedup}×`,
      pass: advisory.ratio === undefined ? undefined : advisory.ratio >= TARGETS.advisoryLockSpeedup,
    })
  }
  for (const row of contention.filter((r) => r.id.includes('/pglock-'))) {
    const onPostgresjs = row.id.includes('postgresjs')
    const who = `${row.workers} waiters, ${onPostgresjs ? 'pglock postgres.js' : 'pglock pg'}`
    const raw = onPostgresjs ? 'raw (postgres.js)' : 'raw (pg)'
    rows.push(
      {
        name: `${who}: hand-offs/s ÷ ${raw}`,
        value: timesAgainst(row.handoffRatio, TARGETS.handoffRatio),
        rounds: spread(row.handoffRoundRatios),
        target: `≥ ${TARGETS.handoffRatio.toFixed(2)}×`,
        pass: row.handoffRatio === undefined ? undefined : row.handoffRatio >= TARGETS.handoffRatio,
      },
      {
        name: `${who}: p99 wait ÷ ${raw}`,
        value: timesAgainst(row.p99Ratio, TARGETS.p99Ratio),
        rounds: spread(row.p99RoundRatios),
        target: `≤ ${TARGETS.p99Ratio.toFixed(2)}×`,
        pass: row.p99Ratio === undefined ? undefined : row.p99Ratio <= TARGETS.p99Ratio,
      },
      {
        name: `${who}: fewest acquisitions of a worker (worst round)`,
        value: row.starvedMin === undefined ? 'n/a' : String(row.starvedMin),
        rounds: '',
        target: '> 0',
        pass: row.starvedMin === undefined ? undefined : row.starvedMin > 0,
      },
    )
  }
  for (const row of held) {
    const n = row.requested?.toLocaleString('en-US') ?? '?'
    const stalled = (what: string) => `stalled at ${row.held ?? 0} held${what}`
    if (row.id === 'held/heap') {
      const value = row.heapBytesPerLock
      rows.push({
        name: `heap per held lock, ${n} held`,
        rounds: '',
        value: row.stalled
          ? stalled('')
          : value !== undefined
            ? `${Math.round(value)} B`
            : row.rounds > 0
              ? 'n/a (no --expose-gc)'
              : 'n/a',
        target: `≤ ${TARGETS.heapBytesPerLock} B`,
        pass:
          row.rounds === 0 || (value === undefined && !row.stalled)
            ? undefined
            : !row.stalled && value !== undefined && value <= TARGETS.heapBytesPerLock,
      })
      continue
    }
    const how = row.id === 'held/sequential' ? 'one after another' : 'all at once'
    const conns = row.serverConnections
    rows.push(
      {
        name: `${n} locks held (${how}): connections holding them`,
        rounds: '',
        value: row.stalled
          ? stalled(` on ${conns ?? '?'} connections`)
          : conns === undefined
            ? 'n/a'
            : String(conns),
        target: `≤ ${TARGETS.heldConnections}`,
        pass:
          row.rounds === 0
            ? undefined
            : !row.stalled && conns !== undefined && conns <= TARGETS.heldConnections,
      },
      {
        name: `${n} locks held (${how}): app pool serves SELECT 1`,
        rounds: '',
        value: row.select1Served === undefined ? 'n/a' : row.select1Served ? 'yes' : 'no (blocked)',
        target: 'yes',
        pass: row.select1Served,
      },
    )
  }
  return rows
}

/** The controls' ratios (a raw floor against itself), with the spread of their rounds. */
function controls(
  uncontended: readonly UncontendedRow[],
  contention: readonly ContentionRow[],
): ControlRow[] {
  const row = (name: string, measure: string, ratios: readonly number[]): ControlRow => ({
    name,
    measure,
    value: times(median(ratios)),
    rounds: spread(ratios),
  })
  return [
    ...uncontended
      .filter((r) => r.id.startsWith('control/'))
      .map((r) => row(r.short, 'µs/op ÷ floor', r.roundRatios)),
    ...contention
      .filter((r) => r.id.includes('/control-'))
      .flatMap((r) => [
        row(r.short, 'hand-offs/s ÷ raw', r.handoffRoundRatios),
        row(r.short, 'p99 wait ÷ raw', r.p99RoundRatios),
      ]),
  ]
}
