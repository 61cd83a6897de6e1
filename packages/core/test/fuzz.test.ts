/*
 * Property-based tests over everything a caller can pass as a key or as options. Each value must
 * either be accepted and map to the id the README ("Keys and cross-language ids") documents, or be
 * rejected with InvalidLockKeyError / InvalidOptionsError before the adapter is asked for anything.
 * Nothing else may escape: no TypeError from an odd value, no hang, no unhandled rejection.
 *
 * The expected ids come from an oracle written here from the documented rules (SHA-256 through
 * TextEncoder and DataView), not from the code under test.
 */
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type Adapter,
  createLocker,
  InvalidLockKeyError,
  InvalidOptionsError,
  type KeyDerivation,
  keyDerivations,
  type LockKey,
  type LockKeyInput,
  lockKey,
  NotInTransactionError,
  PgLockError,
  type Row,
  type TransactionStatus,
} from '../src/index.js'

/** Runs per property: enough to reach the edges of every arbitrary, small enough for a few seconds. */
const RUNS = { lockKey: 2_000, derivation: 1_000, locker: 2_000, createLocker: 1_000 } as const
/** A promise from the locker that has not settled by then counts as a hang. */
const HANG_MS = 1_000

// ---- the oracle: the documented mapping --------------------------------------------------------------

const INVALID = Symbol('invalid')
type Expected = LockKey | typeof INVALID

const INT4_MIN = -(2 ** 31)
const INT4_MAX = 2 ** 31 - 1
const INT8_MIN = -(2n ** 63n)
const INT8_MAX = 2n ** 63n - 1n
const MAX_TIMEOUT_MS = 2 ** 31 - 1

const isInt4 = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= INT4_MIN && v <= INT4_MAX
const isInt8 = (v: unknown): v is bigint => typeof v === 'bigint' && v >= INT8_MIN && v <= INT8_MAX

/** SHA-256 of the UTF-8 bytes; TextEncoder turns lone surrogates into U+FFFD, so such names still get an id. */
function sha256View(name: string): DataView {
  const digest = createHash('sha256').update(new TextEncoder().encode(name)).digest()
  return new DataView(digest.buffer, digest.byteOffset, digest.byteLength)
}

// `+ 0` turns -0 into 0: a key prints and compares the same whichever zero it was given.
const bigintKey = (key: bigint): LockKey => ({ kind: 'bigint', key })
const pairKey = (key1: number, key2: number): LockKey => ({ kind: 'pair', key1: key1 + 0, key2: key2 + 0 })

function expectedFromObject(value: object): Expected {
  const { kind, key, key1, key2 } = value as Record<string, unknown>
  if (kind === 'bigint') return isInt8(key) ? bigintKey(key) : INVALID
  if (kind === 'pair') return isInt4(key1) && isInt4(key2) ? pairKey(key1, key2) : INVALID
  return INVALID
}

/** What `lockKey(value, derive)` must return, or INVALID when it must throw InvalidLockKeyError. */
function expectedKey(value: unknown, derive?: (name: string) => unknown): Expected {
  switch (typeof value) {
    case 'bigint':
      return isInt8(value) ? bigintKey(value) : INVALID
    case 'number':
      return Number.isSafeInteger(value) ? bigintKey(BigInt(value)) : INVALID
    case 'string': {
      // Default derivation (sha256): the first 8 bytes, little-endian signed.
      if (derive === undefined) return bigintKey(sha256View(value).getBigInt64(0, true))
      const derived = derive(value)
      return typeof derived === 'object' && derived !== null && !Array.isArray(derived)
        ? expectedFromObject(derived)
        : INVALID
    }
    case 'object': {
      if (value === null) return INVALID
      if (Array.isArray(value)) {
        if (value.length !== 2) return INVALID
        const [first, second] = value as unknown[]
        // [namespace, id]: the namespace is the first 4 bytes of its SHA-256, little-endian int32.
        if (typeof first === 'string' && isInt4(second))
          return pairKey(sha256View(first).getInt32(0, true), second)
        return isInt4(first) && isInt4(second) ? pairKey(first, second) : INVALID
      }
      return expectedFromObject(value)
    }
    default:
      return INVALID
  }
}

function isSignalLike(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true
  const v = value as Record<string, unknown> | null
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.aborted === 'boolean' &&
    typeof v.addEventListener === 'function' &&
    typeof v.removeEventListener === 'function'
  )
}

type ExpectedOptions = typeof INVALID | { readonly signal: AbortSignal | undefined }

/** The documented option rules: an object (or nothing), known names only, each value of its type. */
function expectedOptions(value: unknown, allowed: readonly string[]): ExpectedOptions {
  if (value === undefined) return { signal: undefined }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return INVALID
  if (Object.keys(value).some((name) => !allowed.includes(name))) return INVALID
  const { shared, timeoutMs, signal } = value as Record<string, unknown>
  if (shared !== undefined && typeof shared !== 'boolean') return INVALID
  if (
    timeoutMs !== undefined &&
    (typeof timeoutMs !== 'number' ||
      !Number.isFinite(timeoutMs) ||
      timeoutMs < 0 ||
      timeoutMs > MAX_TIMEOUT_MS)
  ) {
    return INVALID
  }
  if (signal !== undefined && !isSignalLike(signal)) return INVALID
  return { signal }
}

function expectedLockerOptions(value: unknown): boolean {
  if (value === undefined) return true
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const names = ['keyDerivation', 'keepAliveMs', 'abandonAfterMs']
  if (Object.keys(value).some((name) => !names.includes(name))) return false
  const { keyDerivation, keepAliveMs, abandonAfterMs } = value as Record<string, unknown>
  if (keyDerivation !== undefined && typeof keyDerivation !== 'function') return false
  const isMilliseconds = (ms: unknown) =>
    ms === undefined || (typeof ms === 'number' && Number.isFinite(ms) && ms >= 1 && ms <= MAX_TIMEOUT_MS)
  return isMilliseconds(keepAliveMs) && isMilliseconds(abandonAfterMs)
}

// ---- arbitraries ----------------------------------------------------------------------------------

const around = (centre: number, spread: number) =>
  fc.integer({ min: -spread, max: spread }).map((d) => centre + d)
const aroundBig = (centre: bigint, spread: bigint) =>
  fc.bigInt({ min: centre - spread, max: centre + spread })

/** int4 values, -0 among them (it must become 0). */
const int4 = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: INT4_MIN, max: INT4_MAX }) },
  { weight: 1, arbitrary: fc.constantFrom(-0, INT4_MIN, INT4_MAX) },
)

const bigints = fc.oneof(
  fc.constantFrom(INT8_MAX, INT8_MAX + 1n, INT8_MIN, INT8_MIN - 1n, 0n, -1n),
  aroundBig(INT8_MAX, 4n),
  aroundBig(INT8_MIN, 4n),
  aroundBig(0n, 4n),
  fc.bigInt({ min: INT8_MIN, max: INT8_MAX }),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
)

const numbers = fc.oneof(
  fc.constantFrom(
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    Number.MIN_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER - 1,
    INT4_MAX + 1,
    INT4_MIN - 1,
  ),
  around(2 ** 53, 3),
  around(-(2 ** 53), 3),
  around(INT4_MAX, 3),
  around(INT4_MIN, 3),
  fc.integer(),
  int4,
  fc.maxSafeInteger(),
  fc.double(), // includes NaN, ±Infinity and -0
  fc.constantFrom(-0, 0.5, 1.5, -1.5, Number.EPSILON, Number.MIN_VALUE, Number.MAX_VALUE),
)

/** Arbitrary UTF-16 code units, so lone surrogates too. */
const utf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) })
const strings = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
  utf16,
  fc.constantFrom('', '\u0000', '\ud800', '\udfff', 'a\ud83d', '\ud83d\udd12', 'invoice'),
)

const symbols = fc.string().map((description) => Symbol(description))
const functions = fc.oneof(
  fc.constant(() => 1),
  fc.constant(class {}),
  fc.constant(async () => {}),
  fc.func(fc.anything()),
)

const scalars = fc.oneof(
  bigints,
  numbers,
  strings,
  fc.boolean(),
  fc.constantFrom(null, undefined),
  symbols,
  functions,
)

const anything = fc.anything({
  maxDepth: 2,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withNullPrototype: true,
  withObjectString: true,
  withSet: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
})

/** Objects shaped more or less like a LockKey, with fields of random types. */
const keyObjects = fc.record(
  {
    kind: fc.oneof(fc.constantFrom('bigint', 'pair', 'Bigint', 'int4'), scalars),
    key: fc.oneof(bigints, scalars),
    key1: fc.oneof(int4, numbers, scalars),
    key2: fc.oneof(int4, numbers, scalars),
  },
  { requiredKeys: [] },
)

/** Well-formed LockKey objects. */
const lockKeyObjects = fc.oneof(
  fc.record({ kind: fc.constant('bigint'), key: fc.bigInt({ min: INT8_MIN, max: INT8_MAX }) }),
  fc.record({ kind: fc.constant('pair'), key1: int4, key2: int4 }),
)

const keyInputs: fc.Arbitrary<unknown> = fc.oneof(
  anything,
  scalars,
  bigints,
  numbers,
  strings,
  keyObjects,
  fc.tuple(int4, int4),
  fc.tuple(strings, int4),
  fc.tuple(strings, numbers),
  fc.tuple(numbers, numbers),
  fc.tuple(int4, strings),
  fc.array(scalars, { maxLength: 3 }),
  fc.sparseArray(scalars, { maxLength: 3 }),
)

/** Keys of every documented form, so that a good share of the locker's runs get past validation. */
const validKeys: fc.Arbitrary<unknown> = fc.oneof(
  fc.bigInt({ min: INT8_MIN, max: INT8_MAX }),
  fc.maxSafeInteger(),
  strings,
  fc.tuple(int4, int4),
  fc.tuple(strings, int4),
  lockKeyObjects,
)

const signals = fc.oneof(
  fc.constant(undefined),
  fc.constant(null).map(() => new AbortController().signal),
  anything.map((reason) => AbortSignal.abort(reason)),
  // Signal-like objects (another realm, a polyfill), idle or already aborted.
  fc.tuple(fc.boolean(), anything).map(([aborted, reason]) => ({
    aborted,
    reason,
    addEventListener: () => {},
    removeEventListener: () => {},
  })),
  fc.constant({ aborted: 'no', addEventListener: () => {}, removeEventListener: () => {} }),
  scalars,
  anything,
)

const timeouts = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: 0, max: MAX_TIMEOUT_MS }),
  around(MAX_TIMEOUT_MS, 2),
  fc.constantFrom(0, -0, -1, 0.5, 1e-300),
  numbers,
  scalars,
)

const UNKNOWN_OPTION_NAMES = [
  'timeout',
  'timeoutMS',
  'Shared',
  'keepAliveMs',
  'abandonAfterMs',
  'keyDerivation',
  'constructor',
  'toString',
  '',
] as const

/** An options object: known names with values of any type, sometimes an unknown name, sometimes no prototype. */
const optionObjects = fc
  .tuple(
    fc.record(
      { shared: fc.oneof(fc.boolean(), scalars), timeoutMs: timeouts, signal: signals },
      { requiredKeys: [] },
    ),
    fc.array(fc.tuple(fc.constantFrom(...UNKNOWN_OPTION_NAMES), scalars), { maxLength: 2 }),
    fc.boolean(),
  )
  .map(([known, unknown, nullPrototype]) => {
    const options: Record<string, unknown> = nullPrototype ? Object.create(null) : {}
    Object.assign(options, known)
    for (const [name, value] of unknown) {
      Object.defineProperty(options, name, { value, enumerable: true, writable: true, configurable: true })
    }
    return options
  })

/** Options that pass validation (for acquire; tryAcquire refuses their timeoutMs). */
const validOptions = fc.record(
  {
    shared: fc.boolean(),
    timeoutMs: fc.oneof(fc.integer({ min: 0, max: MAX_TIMEOUT_MS }), fc.constantFrom(0, -0, 0.5, 1e-300)),
    signal: fc.oneof(
      { weight: 3, arbitrary: fc.constant(null).map(() => new AbortController().signal) },
      { weight: 1, arbitrary: anything.map((reason) => AbortSignal.abort(reason)) },
    ),
  },
  { requiredKeys: [] },
)

const acquireOptions: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: optionObjects },
  { weight: 4, arbitrary: validOptions },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: scalars },
  { weight: 1, arbitrary: anything },
)

/** Key derivations that return anything at all, LockKey-shaped or not. */
const derivationResults = fc.oneof(lockKeyObjects, keyObjects, anything, scalars)
const derivations = fc.oneof(
  fc.func(derivationResults),
  derivationResults.map((result) => () => result),
)

// ---- the fake adapter -------------------------------------------------------------------------------

interface Recorded {
  readonly what: 'connect' | 'transaction' | 'query'
  readonly text?: string
  readonly params?: readonly unknown[]
}

/** Session connections never arrive (connect rejects with `refusal`); transaction statements succeed. */
function recordingAdapter(status: TransactionStatus) {
  const calls: Recorded[] = []
  const refusal = new Error('the fake adapter refuses connections')
  // Enough for every statement of the transaction route: the lock result and the saved timeouts.
  const row: Row = { acquired: true, locktimeout: '0', statementtimeout: '0' }
  const adapter: Adapter<object> = {
    name: 'fuzz',
    connect: async () => {
      calls.push({ what: 'connect' })
      throw refusal
    },
    transaction: () => {
      calls.push({ what: 'transaction' })
      return {
        query: async (text, params) => {
          calls.push({ what: 'query', text, params: [...params] })
          return [row]
        },
        transactionStatus: () => status,
      }
    },
    sqlState: () => undefined,
    isConnectionError: () => false,
  }
  return { adapter, calls, refusal }
}

type Outcome =
  | { readonly kind: 'resolved'; readonly value: unknown }
  | { readonly kind: 'rejected'; readonly error: unknown }
  | { readonly kind: 'threw'; readonly error: unknown }
  | { readonly kind: 'hung' }

/** Calls `start` and waits for its promise, at most HANG_MS; a synchronous throw is an outcome of its own. */
async function outcomeOf(start: () => Promise<unknown>): Promise<Outcome> {
  let promise: Promise<unknown>
  try {
    promise = start()
  } catch (error) {
    return { kind: 'threw', error }
  }
  let timer: ReturnType<typeof setTimeout> | undefined
  const hung = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'hung' }), HANG_MS)
  })
  try {
    return await Promise.race([
      promise.then(
        (value): Outcome => ({ kind: 'resolved', value }),
        (error: unknown): Outcome => ({ kind: 'rejected', error }),
      ),
      hung,
    ])
  } finally {
    clearTimeout(timer)
  }
}

function expectRejectedWith(
  outcome: Outcome,
  ...classes: ReadonlyArray<abstract new (...args: never[]) => Error>
) {
  expect(outcome.kind).toBe('rejected')
  const error = (outcome as { error: unknown }).error
  expect(
    classes.some((c) => error instanceof c),
    `rejected with ${String(error)}`,
  ).toBe(true)
  expect(error).toBeInstanceOf(PgLockError)
}

const keyParams = (key: LockKey): string[] =>
  key.kind === 'bigint' ? [String(key.key)] : [String(key.key1), String(key.key2)]

// ---- properties -----------------------------------------------------------------------------------

const METHODS = ['acquire', 'tryAcquire', 'withLock', 'tryWithLock', 'tx.acquire', 'tx.tryAcquire'] as const
type Method = (typeof METHODS)[number]

describe('fuzz: keys and options', () => {
  it('lockKey(value) returns the documented frozen LockKey or throws InvalidLockKeyError', () => {
    const seen = new Map<string, number>()
    fc.assert(
      fc.property(fc.oneof(keyInputs, validKeys), (value) => {
        const expected = expectedKey(value)
        const form =
          expected === INVALID
            ? 'rejected'
            : Array.isArray(value)
              ? `[${typeof value[0]}, number]`
              : `${typeof value}${typeof value === 'object' ? ` (${expected.kind})` : ''}`
        seen.set(form, (seen.get(form) ?? 0) + 1)
        let actual: LockKey
        try {
          actual = lockKey(value as LockKeyInput)
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidLockKeyError)
          expect((error as InvalidLockKeyError).value).toBe(value)
          expect((error as InvalidLockKeyError).code).toBe('INVALID_KEY')
          expect(expected, 'a documented key form was rejected').toBe(INVALID)
          return
        }
        expect(expected, 'an undocumented key form was accepted').not.toBe(INVALID)
        expect(actual).toStrictEqual(expected)
        expect(Object.isFrozen(actual)).toBe(true)
        if (actual.kind === 'pair') {
          expect(Object.is(actual.key1, -0) || Object.is(actual.key2, -0)).toBe(false)
        }
      }),
      { numRuns: RUNS.lockKey },
    )
    // Every accepted form, and rejections, were checked (expected counts are several times these).
    expect(Object.fromEntries(seen)).toEqual({
      rejected: expect.toSatisfy((n: number) => n >= 200),
      bigint: expect.toSatisfy((n: number) => n >= 50),
      number: expect.toSatisfy((n: number) => n >= 50),
      string: expect.toSatisfy((n: number) => n >= 50),
      '[number, number]': expect.toSatisfy((n: number) => n >= 20),
      '[string, number]': expect.toSatisfy((n: number) => n >= 20),
      'object (bigint)': expect.toSatisfy((n: number) => n >= 20),
      'object (pair)': expect.toSatisfy((n: number) => n >= 20),
    })
  })

  it('a key derivation that returns anything yields its LockKey or InvalidLockKeyError; a non-function derivation InvalidOptionsError', () => {
    let accepted = 0
    fc.assert(
      fc.property(strings, derivations, scalars, (name, derive, notAFunction) => {
        const expected = expectedKey(name, derive)
        if (expected !== INVALID) accepted++
        let actual: LockKey | undefined
        try {
          actual = lockKey(name, derive as KeyDerivation)
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidLockKeyError)
          expect(expected).toBe(INVALID)
        }
        if (actual !== undefined) {
          expect(actual).toStrictEqual(expected)
          expect(Object.isFrozen(actual)).toBe(true)
        }
        // undefined is an omitted argument: the default derivation.
        if (typeof notAFunction !== 'function' && notAFunction !== undefined) {
          expect(() => lockKey(name, notAFunction as never)).toThrow(InvalidOptionsError)
        }
      }),
      { numRuns: RUNS.derivation },
    )
    expect(accepted).toBeGreaterThan(RUNS.derivation / 10)
    expect(accepted).toBeLessThan(RUNS.derivation * 0.9)
  })

  it('locker methods reject bad keys and options before any adapter call, and otherwise reach the adapter and settle', async () => {
    // How often each outcome was checked: a property whose inputs all fail validation proves little.
    const seen = new Map<string, number>()
    const count = (outcome: string) => seen.set(outcome, (seen.get(outcome) ?? 0) + 1)
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...METHODS),
        fc.oneof(keyInputs, validKeys),
        acquireOptions,
        fc.constantFrom<TransactionStatus>('active', 'unknown', 'idle'),
        fc.option(derivations, { nil: undefined, freq: 4 }),
        async (method: Method, key, options, status, derive) => {
          const { adapter, calls, refusal } = recordingAdapter(status)
          const locker = createLocker(
            adapter,
            derive === undefined ? {} : { keyDerivation: derive as KeyDerivation },
          )
          const tx = {}
          const fn = () => 'ran'
          const outcome = await outcomeOf(() => {
            const k = key as LockKeyInput
            const o = options as never
            switch (method) {
              case 'acquire':
                return locker.acquire(k, o)
              case 'tryAcquire':
                return locker.tryAcquire(k, o)
              case 'withLock':
                return locker.withLock(k, fn, o)
              case 'tryWithLock':
                return locker.tryWithLock(k, fn, o)
              case 'tx.acquire':
                return locker.transaction(tx).acquire(k, o)
              case 'tx.tryAcquire':
                return locker.transaction(tx).tryAcquire(k, o)
            }
          })
          expect(outcome.kind, 'the call settled in time and did not throw synchronously').not.toMatch(
            /hung|threw/,
          )

          const isTry = method === 'tryAcquire' || method === 'tryWithLock' || method === 'tx.tryAcquire'
          const expectedKeyValue = expectedKey(key, derive)
          const expectedOpts = expectedOptions(
            options,
            isTry ? ['shared', 'signal'] : ['shared', 'timeoutMs', 'signal'],
          )

          if (expectedKeyValue === INVALID) {
            count('invalid key')
            // The order of the two checks is not documented when both fail.
            if (expectedOpts === INVALID)
              expectRejectedWith(outcome, InvalidLockKeyError, InvalidOptionsError)
            else expectRejectedWith(outcome, InvalidLockKeyError)
            expect(calls).toEqual([])
          } else if (expectedOpts === INVALID) {
            count('invalid options')
            expectRejectedWith(outcome, InvalidOptionsError)
            expect(calls).toEqual([])
          } else if (expectedOpts.signal?.aborted === true) {
            // An aborted signal rejects with its reason, unchanged, before anything is asked of the adapter.
            count('aborted')
            expect(outcome.kind).toBe('rejected')
            expect(outcome.kind === 'rejected' && Object.is(outcome.error, expectedOpts.signal.reason)).toBe(
              true,
            )
            expect(calls).toEqual([])
          } else if (!method.startsWith('tx.')) {
            count('session: adapter error')
            expect(
              outcome.kind === 'rejected' && outcome.error === refusal,
              'rejects with the adapter error',
            ).toBe(true)
            expect(calls).toEqual([{ what: 'connect' }])
          } else if (status === 'idle') {
            count('transaction: not in a transaction')
            expectRejectedWith(outcome, NotInTransactionError)
            expect(calls).toEqual([{ what: 'transaction' }])
          } else {
            const savepoint = calls.some((c) => c.text?.startsWith('SAVEPOINT') === true)
            count(savepoint ? 'transaction: locked under a savepoint' : 'transaction: locked')
            expect(outcome).toEqual({ kind: 'resolved', value: method === 'tx.acquire' ? undefined : true })
            expect(calls[0]).toEqual({ what: 'transaction' })
            const queries = calls.filter((c) => c.what === 'query')
            for (const q of queries) for (const p of q.params ?? []) expect(typeof p).toBe('string')
            // The key reaches the server as the documented id.
            const locks = queries.filter((q) => /advisory_xact_lock/.test(q.text ?? ''))
            expect(locks.length).toBeGreaterThan(0)
            for (const q of locks) expect(q.params).toEqual(keyParams(expectedKeyValue))
          }
          await locker.close()
        },
      ),
      { numRuns: RUNS.locker },
    )
    // Expected counts at 2000 runs are several times these floors.
    expect(Object.fromEntries(seen)).toEqual({
      'invalid key': expect.toSatisfy((n: number) => n >= 100),
      'invalid options': expect.toSatisfy((n: number) => n >= 100),
      aborted: expect.toSatisfy((n: number) => n >= 10),
      'session: adapter error': expect.toSatisfy((n: number) => n >= 100),
      'transaction: not in a transaction': expect.toSatisfy((n: number) => n >= 5),
      'transaction: locked': expect.toSatisfy((n: number) => n >= 10),
      'transaction: locked under a savepoint': expect.toSatisfy((n: number) => n >= 10),
    })
  })

  it('createLocker returns a locker or throws InvalidOptionsError synchronously, for any options and adapter', async () => {
    const milliseconds = fc.oneof(
      fc.integer({ min: 1, max: MAX_TIMEOUT_MS }),
      around(MAX_TIMEOUT_MS, 2),
      around(1, 2),
      numbers,
      scalars,
    )
    const lockerOptions = fc.oneof(
      fc
        .tuple(
          fc.record(
            {
              keyDerivation: fc.oneof(fc.constantFrom(...Object.values(keyDerivations)), functions, scalars),
              keepAliveMs: milliseconds,
              abandonAfterMs: milliseconds,
            },
            { requiredKeys: [] },
          ),
          fc.array(fc.tuple(fc.constantFrom('timeoutMs', 'shared', 'derivation', 'keepalive'), scalars), {
            maxLength: 1,
          }),
        )
        .map(([known, unknown]) => ({ ...known, ...Object.fromEntries(unknown) })),
      fc.constant(undefined),
      scalars,
      anything,
    )
    const notAnAdapter = fc.oneof(
      scalars,
      anything,
      fc.record(
        {
          connect: fc.oneof(functions, scalars),
          transaction: fc.oneof(functions, scalars),
          sqlState: fc.oneof(functions, scalars),
          isConnectionError: fc.oneof(functions, scalars),
        },
        { requiredKeys: [] },
      ),
    )
    await fc.assert(
      fc.asyncProperty(lockerOptions, notAnAdapter, async (options, badAdapter) => {
        const { adapter } = recordingAdapter('active')
        let locker: ReturnType<typeof createLocker> | undefined
        try {
          locker = createLocker(adapter, options as never)
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidOptionsError)
          expect(expectedLockerOptions(options), 'valid locker options were rejected').toBe(false)
        }
        if (locker !== undefined) {
          expect(expectedLockerOptions(options), 'invalid locker options were accepted').toBe(true)
          for (const name of [
            'acquire',
            'tryAcquire',
            'withLock',
            'tryWithLock',
            'transaction',
            'close',
          ] as const) {
            expect(typeof locker[name]).toBe('function')
          }
          await locker.close()
        }

        const a = badAdapter as Record<string, unknown> | null
        const isAdapter =
          typeof a === 'object' &&
          a !== null &&
          ['connect', 'transaction', 'sqlState', 'isConnectionError'].every((m) => typeof a[m] === 'function')
        if (isAdapter) return
        expect(() => createLocker(badAdapter as never)).toThrow(InvalidOptionsError)
      }),
      { numRuns: RUNS.createLocker },
    )
  })
})
