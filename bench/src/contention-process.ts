/**
 * One contention arena in a process of its own, driven by the bench over IPC (see `ArenaProcess` in
 * contention.ts): a service runs one lock implementation, not two taking turns in one event loop and
 * heap. Messages: `open` (connect the workers, warm their connections), `drive` (run the loop for a
 * window), `finish` (the sample of the measured windows), `close`.
 */
import { type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks'
import pg from 'pg'
import {
  type Arena,
  type ArenaRequest,
  CONTENTION_IMPLEMENTATIONS,
  contentionSample,
  drive,
  type Tally,
  tally,
} from './contention.js'
import { describe, sleep } from './util.js'

let arena: Arena | undefined
let admin: pg.Client | undefined
let mine: Tally | undefined
let label = 'contention'
let closed = false
const gcObserved: PerformanceEntry[] = []
const gcObserver = new PerformanceObserver((list) => {
  gcObserved.push(...list.getEntries())
})

function reply(message: object): void {
  process.send?.(message)
}

async function handle(request: ArenaRequest): Promise<object> {
  switch (request.type) {
    case 'open': {
      const implementation = CONTENTION_IMPLEMENTATIONS.find((i) => i.id === request.implementation)
      if (implementation === undefined)
        throw new Error(`no contention implementation ${request.implementation}`)
      label = `${implementation.id} with ${request.workers} workers`
      admin = new pg.Client({ connectionString: request.url, application_name: 'pglock-admin' })
      admin.on('error', () => {})
      await admin.connect()
      arena = await implementation.open({ url: request.url, admin }, request.workers, BigInt(request.key))
      mine = tally(request.workers, arena.setupCycles)
      gcObserver.observe({ entryTypes: ['gc'] })
      return {}
    }
    case 'drive':
      if (arena === undefined || mine === undefined) throw new Error('drive before open')
      await drive(arena, request.ms, mine, request.measured, label)
      return {}
    case 'finish':
      if (mine === undefined) throw new Error('finish before open')
      // Lets the observer receive the last entries of the last window.
      await sleep(20)
      return { sample: contentionSample(mine.perWorker.length, mine, gcObserved) }
    case 'close':
      gcObserver.disconnect()
      await arena?.close()
      await admin?.end()
      closed = true
      return {}
  }
}

process.on('message', (request: ArenaRequest) => {
  handle(request).then(
    (answer) => reply({ ok: true, ...answer }),
    (error: unknown) => reply({ ok: false, error: describe(error) }),
  )
})
// Anything unhandled fails the case: the parent sees the process exit while it waits for an answer.
process.on('unhandledRejection', (error) => {
  process.stderr.write(`  unhandled rejection in ${label}: ${describe(error)}\n`)
  process.exit(1)
})
// Let go after `close`, or orphaned (the bench died): then nothing else would end its connections.
process.on('disconnect', () => process.exit(closed ? 0 : 1))
reply({ ok: true })
