/**
 * How stress processes are started: `node --import tsx --conditions=@pglock/source`, the way
 * examples/demo runs its workers (TypeScript through tsx, the workspace packages from their sources).
 */
import { fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { CoordinatorReport, StressConfig, StressSummary, TestCommand } from './messages.js'

const COORDINATOR_SCRIPT = fileURLToPath(new URL('./coordinator.ts', import.meta.url))

/** `execArgv` for `fork()`: TypeScript through tsx, and the workspace packages' sources. */
export function stressExecArgv(): string[] {
  const tsx = createRequire(import.meta.url).resolve('tsx')
  return ['--import', pathToFileURL(tsx).href, '--conditions=@pglock/source']
}

/**
 * Runs one adapter's stress check in a coordinator process and resolves with its summary; rejects with
 * the coordinator's failure. An abort of `signal` (the test timed out) kills the coordinator, whose
 * workers then stop as their IPC channel closes.
 */
export function runCoordinator(config: StressConfig, signal: AbortSignal): Promise<StressSummary> {
  const child = fork(COORDINATOR_SCRIPT, [], {
    execArgv: stressExecArgv(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  })
  const kill = () => child.kill('SIGKILL')
  signal.addEventListener('abort', kill, { once: true })
  return new Promise((resolve, reject) => {
    let report: CoordinatorReport | undefined
    child.on('message', (message: CoordinatorReport) => {
      if (message.type === 'hello') child.send({ type: 'run', config } satisfies TestCommand)
      else report = message
    })
    child.once('error', reject)
    child.once('exit', (code, exitSignal) => {
      signal.removeEventListener('abort', kill)
      if (report?.type === 'result' && code === 0) resolve(report.summary)
      else if (report?.type === 'failed') reject(new Error(`stress ${config.adapter}: ${report.message}`))
      else reject(new Error(`stress ${config.adapter}: the coordinator exited with ${exitSignal ?? code}`))
    })
  })
}
