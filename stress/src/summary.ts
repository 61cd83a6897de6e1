/** The summary line the stress test prints for each adapter. */
import type { StressSummary } from './messages.js'

/** One line per adapter: what was done, what was entered, and the two numbers that must be 0. */
export function formatSummary(s: StressSummary): string {
  const total = Object.values(s.operations).reduce((a, b) => a + b, 0)
  const kinds = Object.entries(s.operations)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ')
  const { exclusive, shared, transaction } = s.sections
  const o = s.outcomes
  const violationTypes = Object.entries(s.violationsByType)
    .map(([type, n]) => `${type} ${n}`)
    .join(', ')
  return (
    `[stress] ${s.adapter}: ${s.processes} processes x ${s.tasks} tasks on ${s.keys} keys, ${s.seconds.toFixed(1)} s: ` +
    `${total} operations (${kinds}; ${s.withSignal} with a signal); ` +
    `sections ${exclusive + shared} (exclusive ${exclusive}, shared ${shared}, in transactions ${transaction}; ` +
    `shared overlapping shared ${s.sharedOverlaps}); busy ${o.busy}, timeouts ${o.timeout}, aborts ${o.aborted}, ` +
    `errors ${o.error}; violations ${s.violations} (${violationTypes}); leaks ${s.leaks}; backends left ${s.backendsLeft} ` +
    `(startup ${s.startupSeconds.toFixed(1)} s, shutdown ${s.shutdownSeconds.toFixed(1)} s)`
  )
}
