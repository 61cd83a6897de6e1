/** The messages main.ts and the workers exchange over the child-process IPC channel. */

/** What the main process tells a worker to do. */
export type Command =
  /** The scheduler fired: run the nightly report unless another worker already runs it. */
  | { readonly type: 'tick'; readonly tick: number }
  /** Add 1 to the shared counter `increments` times, with or without `withLock`. */
  | { readonly type: 'count'; readonly increments: number; readonly useLock: boolean }
  /** Try to become the leader: wait for the leader lock, then keep it. */
  | { readonly type: 'campaign' }
  /** Release everything, close the pool and exit. */
  | { readonly type: 'shutdown' }

/** What a worker reports back. */
export type Report =
  | { readonly type: 'ready' }
  | { readonly type: 'job-started'; readonly tick: number }
  | { readonly type: 'tick-done'; readonly tick: number; readonly ran: boolean }
  | { readonly type: 'count-done'; readonly increments: number }
  | { readonly type: 'leader' }
  | { readonly type: 'stopped-waiting'; readonly reason: string }
  | { readonly type: 'closed' }
  | { readonly type: 'failed'; readonly message: string }

/** The lock keys the demo uses: plain strings, hashed to PostgreSQL advisory lock ids by pglock. */
export const JOB_LOCK = 'demo:job:nightly-report'
export const COUNTER_LOCK = 'demo:counter'
export const LEADER_LOCK = 'demo:leader'
