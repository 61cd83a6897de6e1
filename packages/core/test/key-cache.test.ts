import { describe, expect, it } from 'vitest'
import {
  type Adapter,
  createLocker,
  InvalidLockKeyError,
  type KeyDerivation,
  keyDerivations,
  type LockKey,
  lockKey,
} from '../src/index.js'
import { KeyCache } from '../src/internal/key-cache.js'
import { Memo } from '../src/internal/memo.js'

/** A derivation that counts its calls per name (sha256's ids). */
function countingDerivation() {
  const calls = new Map<string, number>()
  const derive: KeyDerivation = (name) => {
    calls.set(name, (calls.get(name) ?? 0) + 1)
    return keyDerivations.sha256(name)
  }
  return { derive, calls }
}

describe('KeyCache (a locker’s keys of the names it derived lately)', () => {
  it('derives a name once and returns the same frozen key while it is kept', () => {
    const { derive, calls } = countingDerivation()
    const cache = new KeyCache(derive)
    const first = cache.lockKey('invoice:42')
    expect(first).toEqual(lockKey('invoice:42'))
    expect(Object.isFrozen(first)).toBe(true)
    for (let i = 0; i < 5; i++) expect(cache.lockKey('invoice:42')).toBe(first)
    expect(calls.get('invoice:42')).toBe(1)
    // Names are compared as strings, whoever built them.
    expect(cache.lockKey(['invoice', ':42'].join(''))).toBe(first)
    expect(calls.get('invoice:42')).toBe(1)
  })

  it('keeps the latest 1,024 names: the oldest is derived again, the newer ones are not', () => {
    const { derive, calls } = countingDerivation()
    const cache = new KeyCache(derive)
    for (let i = 0; i <= 1_024; i++) cache.lockKey(`job:${i}`)
    cache.lockKey('job:1024')
    cache.lockKey('job:1')
    expect([calls.get('job:1024'), calls.get('job:1')]).toEqual([1, 1])
    cache.lockKey('job:0')
    expect(calls.get('job:0')).toBe(2)
  })

  it('keeps nothing for a name whose derivation fails: it is asked again, and fails again', () => {
    let calls = 0
    const cache = new KeyCache(() => {
      calls++
      return { kind: 'bigint', key: 2n ** 63n } as LockKey
    })
    expect(() => cache.lockKey('x')).toThrow(InvalidLockKeyError)
    expect(() => cache.lockKey('x')).toThrow(InvalidLockKeyError)
    expect(calls).toBe(2)
  })

  it('passes every other input to lockKey unchanged, without the derivation', () => {
    const { derive, calls } = countingDerivation()
    const cache = new KeyCache(derive)
    const inputs = [
      42,
      42n,
      [1, 2] as const,
      ['invoice', 42] as const,
      { kind: 'pair', key1: 3, key2: 4 } as const,
    ]
    for (const input of inputs) expect(cache.lockKey(input)).toEqual(lockKey(input))
    // The documented id of ['invoice', 42], the same before and after 2,000 other namespaces.
    expect(cache.lockKey(['invoice', 42])).toEqual({ kind: 'pair', key1: -555493806, key2: 42 })
    for (let i = 0; i < 2_000; i++) lockKey([`ns${i}`, 1])
    expect(cache.lockKey(['invoice', 42])).toEqual({ kind: 'pair', key1: -555493806, key2: 42 })
    expect(calls.size).toBe(0)
    expect(() => cache.lockKey(1.5)).toThrow(InvalidLockKeyError)
  })

  it('is what a locker uses: a name acquired again, in either scope, is not derived again', async () => {
    const { derive, calls } = countingDerivation()
    const adapter: Adapter<object> = {
      name: 'no connections',
      connect: () => Promise.reject(new Error('no connections here')),
      transaction: () => ({
        query: () => Promise.reject(new Error('no SQL here')),
        transactionStatus: () => 'active',
      }),
      sqlState: () => undefined,
      isConnectionError: () => false,
    }
    const locker = createLocker(adapter, { keyDerivation: derive })
    await expect(locker.acquire('nightly-report')).rejects.toThrow('no connections here')
    await expect(locker.tryAcquire('nightly-report')).rejects.toThrow('no connections here')
    await expect(locker.transaction({}).tryAcquire('nightly-report')).rejects.toThrow('no SQL here')
    expect(calls.get('nightly-report')).toBe(1)
    // Each locker keeps its own: another derivation may map the same name elsewhere.
    const other = createLocker(adapter, { keyDerivation: derive })
    await expect(other.acquire('nightly-report')).rejects.toThrow('no connections here')
    expect(calls.get('nightly-report')).toBe(2)
  })
})

describe('Memo', () => {
  it('computes a string’s value once while kept, forgets the oldest beyond its size, keeps nothing on a throw', () => {
    const memo = new Memo<number>(2)
    let computed = 0
    const length = (text: string) => {
      computed++
      if (text === 'bad') throw new Error('bad')
      return text.length
    }
    expect([memo.get('a', length), memo.get('bb', length), memo.get('a', length)]).toEqual([1, 2, 1])
    expect(computed).toBe(2)
    memo.get('ccc', length) // forgets 'a', the oldest
    memo.get('a', length)
    expect(computed).toBe(4)
    expect(() => memo.get('bad', length)).toThrow('bad')
    expect(() => memo.get('bad', length)).toThrow('bad')
    expect(computed).toBe(6)
  })
})
