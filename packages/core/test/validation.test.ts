import { describe, expect, it } from 'vitest'
import {
  type Adapter,
  createLocker,
  InvalidLockKeyError,
  InvalidOptionsError,
  keyDerivations,
  LockerClosedError,
  PgLockError,
} from '../src/index.js'

/** An adapter that records what the core asks of it; lock behaviour is tested on a real server elsewhere. */
function recordingAdapter() {
  const calls: string[] = []
  const adapter: Adapter<object> = {
    name: 'recording',
    connect: async () => {
      calls.push('connect')
      throw new Error('the fake adapter has no connections')
    },
    transaction: () => {
      calls.push('transaction')
      return {
        query: async (text) => {
          calls.push(text)
          return []
        },
        transactionStatus: () => 'active',
      }
    },
    sqlState: () => undefined,
    isConnectionError: () => false,
  }
  return { adapter, calls }
}

const badKeys: unknown[] = [
  Number.NaN,
  1.5,
  2 ** 53,
  2n ** 63n,
  -(2n ** 63n) - 1n,
  null,
  undefined,
  {},
  Symbol('k'),
  [1],
  [1, 2, 3],
  [2 ** 31, 0],
  true,
]

const badAcquireOptions: unknown[] = [
  { timeoutMs: -1 },
  { timeoutMs: Number.NaN },
  { timeoutMs: Number.POSITIVE_INFINITY },
  { timeoutMs: '100' },
  { timeoutMs: 2 ** 31 },
  { shared: 'yes' },
  { signal: {} },
  { signal: 'abort' },
  { timeout: 5_000 },
  null,
  'fast',
]

describe('input validation', () => {
  it.each(badKeys.map((k) => [k]))('rejects the key %s before any connection or SQL', async (key) => {
    const { adapter, calls } = recordingAdapter()
    const locker = createLocker(adapter)
    const tx = {}
    for (const attempt of [
      () => locker.acquire(key as never),
      () => locker.tryAcquire(key as never),
      () => locker.withLock(key as never, () => 1),
      () => locker.tryWithLock(key as never, () => 1),
      () => locker.transaction(tx).acquire(key as never),
      () => locker.transaction(tx).tryAcquire(key as never),
    ]) {
      const error = await attempt().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(InvalidLockKeyError)
      expect(error).toBeInstanceOf(PgLockError)
      expect(error).toMatchObject({ code: 'INVALID_KEY', name: 'InvalidLockKeyError' })
    }
    expect(calls).toEqual([])
  })

  it.each(badAcquireOptions.map((o) => [o]))(
    'rejects the acquire options %o before any SQL',
    async (options) => {
      const { adapter, calls } = recordingAdapter()
      const locker = createLocker(adapter)
      for (const attempt of [
        () => locker.acquire(1n, options as never),
        () => locker.withLock(1n, () => 1, options as never),
        () => locker.transaction({}).acquire(1n, options as never),
      ]) {
        const error = await attempt().catch((e: unknown) => e)
        expect(error).toBeInstanceOf(InvalidOptionsError)
        expect(error).toMatchObject({ code: 'INVALID_OPTIONS', name: 'InvalidOptionsError' })
      }
      expect(calls).toEqual([])
    },
  )

  it('tryAcquire refuses timeoutMs (it never waits)', async () => {
    const { adapter, calls } = recordingAdapter()
    const locker = createLocker(adapter)
    await expect(locker.tryAcquire(1n, { timeoutMs: 10 } as never)).rejects.toBeInstanceOf(
      InvalidOptionsError,
    )
    await expect(locker.transaction({}).tryAcquire(1n, { timeoutMs: 10 } as never)).rejects.toBeInstanceOf(
      InvalidOptionsError,
    )
    expect(calls).toEqual([])
  })

  it('withLock and tryWithLock refuse a missing callback before locking', async () => {
    const { adapter, calls } = recordingAdapter()
    const locker = createLocker(adapter)
    await expect(locker.withLock(1n, undefined as never)).rejects.toMatchObject({ option: 'fn' })
    await expect(locker.tryWithLock(1n, 'x' as never)).rejects.toMatchObject({ option: 'fn' })
    expect(calls).toEqual([])
  })

  it('createLocker validates the adapter and options synchronously', () => {
    const { adapter } = recordingAdapter()
    expect(() => createLocker({} as never)).toThrow(InvalidOptionsError)
    expect(() => createLocker(null as never)).toThrow(InvalidOptionsError)
    expect(() => createLocker(adapter, { keyDerivation: 'sha256' } as never)).toThrow(InvalidOptionsError)
    expect(() => createLocker(adapter, { keyDerivaton: keyDerivations.sqlx } as never)).toThrow(
      /unknown option/,
    )
    expect(() => createLocker(adapter, { keyDerivation: keyDerivations.sqlx })).not.toThrow()
  })

  it('an already aborted signal rejects with its reason, unchanged, before any SQL', async () => {
    const { adapter, calls } = recordingAdapter()
    const locker = createLocker(adapter)
    const reason = { why: 'not an Error at all' }
    const signal = AbortSignal.abort(reason)
    await expect(locker.acquire(1n, { signal })).rejects.toBe(reason)
    await expect(locker.transaction({}).acquire(1n, { signal })).rejects.toBe(reason)
    await expect(locker.transaction({}).tryAcquire(1n, { signal })).rejects.toBe(reason)
    expect(calls).toEqual([])
  })

  it('a closed locker refuses work with LockerClosedError; close is idempotent', async () => {
    const { adapter, calls } = recordingAdapter()
    const locker = createLocker(adapter)
    await Promise.all([locker.close(), locker.close()])
    await locker[Symbol.asyncDispose]()
    await expect(locker.acquire(1n)).rejects.toBeInstanceOf(LockerClosedError)
    await expect(locker.tryWithLock(1n, () => 1)).rejects.toMatchObject({ code: 'LOCKER_CLOSED' })
    await expect(locker.transaction({}).tryAcquire(1n)).rejects.toBeInstanceOf(LockerClosedError)
    expect(calls).toEqual([])
  })

  it('the locker key derivation applies to string keys', async () => {
    const { adapter, calls } = recordingAdapter()
    const locker = createLocker(adapter, { keyDerivation: keyDerivations.withAdvisoryLock })
    await locker.transaction({}).tryAcquire('name')
    // crc32('name') & 0x7fffffff, 0: a pair key, so the int4 overload.
    expect(calls.some((c) => c.includes('pg_try_advisory_xact_lock($1::int4, $2::int4)'))).toBe(true)
  })
})
