import { createHash, hkdfSync } from 'node:crypto'
import { InvalidLockKeyError, InvalidOptionsError } from './errors.js'
import { Memo } from './internal/memo.js'

/** Everything callers may pass where a lock is named; it is turned into a `LockKey` before any SQL runs. */
export type LockKeyInput =
  | string
  | bigint
  | number
  | readonly [number, number]
  | readonly [namespace: string, id: number]
  | LockKey

/** A validated advisory-lock id; the two kinds are separate key spaces in PostgreSQL, so `kind` is part of the identity. */
export type LockKey =
  | { readonly kind: 'bigint'; readonly key: bigint }
  | { readonly kind: 'pair'; readonly key1: number; readonly key2: number }

/** Maps a string name to a lock id, so that pglock can share locks with other libraries that hash names their way. */
export type KeyDerivation = (name: string) => LockKey

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const INT32_MIN = -(2 ** 31)
const INT32_MAX = 2 ** 31 - 1

function bigintKey(key: bigint): LockKey {
  return Object.freeze({ kind: 'bigint', key })
}

function pairKey(key1: number, key2: number): LockKey {
  // `| 0` folds -0 into 0 so that equal keys always print and compare the same.
  return Object.freeze({ kind: 'pair', key1: key1 | 0, key2: key2 | 0 })
}

function isInt4(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX
}

function isInt8(value: unknown): value is bigint {
  return typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX
}

// Returns a reason string instead of throwing so that callers can word the error for their own context.
function fromKeyObject(value: object): LockKey | string {
  const candidate = value as {
    readonly kind?: unknown
    readonly key?: unknown
    readonly key1?: unknown
    readonly key2?: unknown
  }
  const kind = candidate.kind
  if (kind === 'bigint') {
    const key = candidate.key
    return isInt8(key) ? bigintKey(key) : 'a bigint key must be a bigint in -2^63 .. 2^63-1'
  }
  if (kind === 'pair') {
    const key1 = candidate.key1
    const key2 = candidate.key2
    return isInt4(key1) && isInt4(key2)
      ? pairKey(key1, key2)
      : 'a pair key needs key1 and key2 as integers in -2^31 .. 2^31-1'
  }
  return "an object key must be a LockKey with kind 'bigint' or 'pair'"
}

/** Validates and normalises any accepted key form, so that nothing malformed ever reaches the server. */
export function lockKey(input: LockKeyInput, derivation: KeyDerivation = keyDerivations.sha256): LockKey {
  if (typeof derivation !== 'function') {
    throw new InvalidOptionsError('keyDerivation', 'must be a function')
  }
  // Inputs come from untyped JavaScript too, so every branch checks the runtime shape.
  const value: unknown = input
  switch (typeof value) {
    case 'bigint':
      if (!isInt8(value)) throw new InvalidLockKeyError(value, 'a bigint key must be in -2^63 .. 2^63-1')
      return bigintKey(value)
    case 'number':
      if (!Number.isSafeInteger(value)) {
        throw new InvalidLockKeyError(
          value,
          'a number key must be a safe integer (use a bigint for larger values, or a string to hash)',
        )
      }
      return bigintKey(BigInt(value))
    case 'string': {
      const derived: unknown = derivation(value)
      const key =
        typeof derived === 'object' && derived !== null && !Array.isArray(derived)
          ? fromKeyObject(derived)
          : 'not a LockKey object'
      if (typeof key === 'string') {
        throw new InvalidLockKeyError(value, `the key derivation returned an invalid key (${key})`)
      }
      return key
    }
    case 'object': {
      if (value === null) break
      if (Array.isArray(value)) {
        const [key1, key2] = value as readonly unknown[]
        if (value.length === 2 && typeof key1 === 'string' && isInt4(key2)) {
          return pairKey(namespaceId(key1), key2)
        }
        if (value.length !== 2 || !isInt4(key1) || !isInt4(key2)) {
          throw new InvalidLockKeyError(
            value,
            'a pair key must be two integers in -2^31 .. 2^31-1, or a [namespace string, int4 id] pair',
          )
        }
        return pairKey(key1, key2)
      }
      const key = fromKeyObject(value)
      if (typeof key === 'string') throw new InvalidLockKeyError(value, key)
      return key
    }
  }
  throw new InvalidLockKeyError(value, 'a key must be a string, bigint, safe integer, int4 pair or LockKey')
}

/**
 * The int4 that names a namespace in a `[namespace, id]` key: the first four bytes of SHA-256 of its
 * UTF-8 bytes, read as a little-endian signed int32 (the `advisory-lock` package's first key for the
 * same name). Fixed, whatever the locker's key derivation: it must never change between versions.
 */
export function namespaceId(namespace: string): number {
  return namespaceIds.get(namespace, computeNamespaceId)
}

/** The ids of the namespaces seen lately: a fixed function of the name, so every locker shares them. */
const namespaceIds = new Memo<number>(1_024)

function computeNamespaceId(namespace: string): number {
  return createHash('sha256').update(utf8(namespace)).digest().readInt32LE(0)
}

function utf8(name: string): Buffer {
  // Lone surrogates become U+FFFD here, as they do in .NET's Encoding.UTF8, so such names still get a stable id.
  return Buffer.from(name, 'utf8')
}

function digest(algorithm: 'sha1' | 'sha256', name: string): Buffer {
  return createHash(algorithm).update(utf8(name)).digest()
}

const CRC32_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

// Hand-rolled because zlib.crc32 is missing from the older Node 20 releases we support.
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of bytes) crc = CRC32_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

const DL_MAX_ASCII_LENGTH = 9
const HEX16 = /^[0-9A-Fa-f]{16}$/
const HEX8_PAIR = /^([0-9A-Fa-f]{8}),([0-9A-Fa-f]{8})$/

function isShortAscii(name: string): boolean {
  if (name.length > DL_MAX_ASCII_LENGTH) return false
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) >= 0x80) return false
  return true
}

function distributedLock(name: string): LockKey {
  // The rule order mirrors PostgresAdvisoryLockKey(name, allowHashing: true); changing it would change ids.
  if (isShortAscii(name)) {
    let r = 0n
    for (let i = 0; i < name.length; i++) r = (r << 7n) | BigInt(name.charCodeAt(i))
    r <<= 1n
    for (let i = name.length; i < DL_MAX_ASCII_LENGTH; i++) r = (r << 7n) | 0x7fn
    r = BigInt.asUintN(64, r)
    return pairKey(Number(BigInt.asIntN(32, r >> 32n)), Number(BigInt.asIntN(32, r)))
  }
  // .NET's AllowHexSpecifier parsing takes either letter case and nothing else (no sign, prefix or spaces).
  if (HEX16.test(name)) return bigintKey(BigInt.asIntN(64, BigInt(`0x${name}`)))
  const pair = HEX8_PAIR.exec(name)
  if (pair) return pairKey(Number.parseInt(pair[1]!, 16) | 0, Number.parseInt(pair[2]!, 16) | 0)
  return bigintKey(digest('sha1', name).readBigInt64LE(0))
}

const SQLX_INFO = 'SQLx (Rust) Postgres advisory lock'
// RFC 5869 treats an absent salt as HashLen zero bytes, which is what sqlx's `Hkdf::new(None, ..)` uses.
const SQLX_SALT = new Uint8Array(32)

/** The string-to-id algorithms of other advisory-lock libraries, so that pglock and those libraries exclude each other on the same names. */
export const keyDerivations: Readonly<{
  sha256: KeyDerivation
  distributedLock: KeyDerivation
  sqlx: KeyDerivation
  postgresqlLock: KeyDerivation
  withAdvisoryLock: KeyDerivation
  advisoryLock: KeyDerivation
}> = Object.freeze({
  sha256: (name: string): LockKey => bigintKey(digest('sha256', name).readBigInt64LE(0)),
  distributedLock,
  sqlx: (name: string): LockKey =>
    bigintKey(Buffer.from(hkdfSync('sha256', utf8(name), SQLX_SALT, SQLX_INFO, 8)).readBigInt64LE(0)),
  postgresqlLock: (name: string): LockKey => bigintKey(digest('sha1', name).readBigInt64BE(0)),
  withAdvisoryLock: (name: string): LockKey => pairKey(crc32(utf8(name)) & 0x7fffffff, 0),
  advisoryLock: (name: string): LockKey => {
    const hash = digest('sha256', name)
    return pairKey(hash.readInt32LE(0), hash.readInt32LE(4))
  },
})

/**
 * The ids of the bigint keys seen lately. An acquire's id is a key of several Maps (the session's keys,
 * hand-offs, contended keys): the same string object for the same key is compared by identity there
 * and keeps its hash, where a fresh string is hashed and compared character by character in each one
 * (about 1 % of the hand-offs per second of 64 waiters on postgres.js).
 */
const bigintIds = new Memo<string, bigint>(1_024)
const bigintId = (key: bigint): string => `b:${key}`

/** A string that is equal for equal keys and distinct across the two key spaces, for use as a Map key. */
export function keyId(key: LockKey): string {
  return key.kind === 'bigint' ? bigintIds.get(key.key, bigintId) : `p:${key.key1}:${key.key2}`
}

/** The `pg_locks` columns that identify this key, so lock state can be checked on the server by plain comparison. */
export function pgLocksIdentity(key: LockKey): {
  readonly classid: string
  readonly objid: string
  readonly objsubid: 1 | 2
} {
  if (key.kind === 'bigint') {
    // pg_locks shows oids, which are unsigned, so the two halves are read as unsigned 32-bit values.
    const unsigned = BigInt.asUintN(64, key.key)
    return Object.freeze({
      classid: String(unsigned >> 32n),
      objid: String(unsigned & 0xffffffffn),
      objsubid: 1,
    })
  }
  return Object.freeze({ classid: String(key.key1 >>> 0), objid: String(key.key2 >>> 0), objsubid: 2 })
}

/** The SQL parameters for this key, as strings because drivers disagree on how to send a JS bigint. */
export function keyParams(key: LockKey): readonly string[] {
  return key.kind === 'bigint' ? [String(key.key)] : [String(key.key1), String(key.key2)]
}
