import { describe, expect, it } from 'vitest'
import { InvalidLockKeyError, InvalidOptionsError } from '../src/errors.js'
import {
  type KeyDerivation,
  keyDerivations,
  keyId,
  keyParams,
  type LockKey,
  type LockKeyInput,
  lockKey,
  pgLocksIdentity,
} from '../src/keys.js'

/*
 * Test vectors, produced by an independent Python 3 implementation (hashlib, hmac, zlib, struct only) of the
 * algorithms in shared/notes/peers.md, not by the code under test. `b = name.encode('utf-8')`:
 *   sha256           int.from_bytes(sha256(b)[:8], 'little', signed=True)                      -> bigint
 *   distributedLock  (1) len(UTF-16 units) <= 9 and all < 0x80: r = 0; r = (r << 7) | c per unit; r <<= 1;
 *                        (9 - len) times r = (r << 7) | 0x7f; pair (int32(r >> 32), int32(r & 0xffffffff))
 *                    (2) len 16, both 8-char halves match [0-9A-Fa-f]{8}: bigint int64((hi << 32) | lo)
 *                    (3) len 17, s[8] == ',', both halves hex: pair (int32(hi), int32(lo))
 *                    (4) else int.from_bytes(sha1(b)[:8], 'little', signed=True) -> bigint
 *   sqlx             prk = HMAC-SHA256(key=32 zero bytes, b); okm = HMAC-SHA256(prk,
 *                    b'SQLx (Rust) Postgres advisory lock' + b'\x01')[:8]; struct.unpack('<q', okm) -> bigint
 *   postgresqlLock   struct.unpack('>q', sha1(b)[:8]) -> bigint
 *   withAdvisoryLock pair (zlib.crc32(b) & 0x7fffffff, 0)
 *   advisoryLock     pair struct.unpack('<ii', sha256(b)[:8])
 * Hex digits are accepted in either case because DistributedLock parses them with .NET's
 * NumberStyles.AllowHexSpecifier, which takes both (and no sign, prefix or whitespace).
 */
const VECTORS: Record<keyof typeof keyDerivations, ReadonlyArray<readonly [string, LockKey]>> = {
  sha256: [
    ['', { kind: 'bigint', key: 1449310910991872227n }],
    ['a', { kind: 'bigint', key: -3837880752741967926n }],
    ['lock', { kind: 'bigint', key: 352793237326725900n }],
    ['reports:nightly', { kind: 'bigint', key: 2951070864758511072n }],
    ['abcdefghi', { kind: 'bigint', key: -4234240796586226663n }],
    ['abcdefghij', { kind: 'bigint', key: 6086450907586967922n }],
    ['\u0000', { kind: 'bigint', key: -7459451922369792914n }],
    ['\u007f'.repeat(9), { kind: 'bigint', key: 4247564444473495998n }],
    ['é', { kind: 'bigint', key: 6035724277697059146n }],
    ['漢', { kind: 'bigint', key: 7640216981161746428n }],
    ['🔒', { kind: 'bigint', key: -1544007693426826902n }],
    ['naïve café', { kind: 'bigint', key: 3013212289565911080n }],
    ['abcdefghé', { kind: 'bigint', key: -4722350925482210556n }],
    ['x'.repeat(1000), { kind: 'bigint', key: 268709184000096324n }],
    ['The quick brown fox jumps over the lazy dog', { kind: 'bigint', key: -7745954930992895785n }],
  ],
  distributedLock: [
    ['', { kind: 'pair', key1: 2147483647, key2: -1 }],
    ['a', { kind: 'pair', key1: -1023410177, key2: -1 }],
    ['lock', { kind: 'pair', key1: -641786185, key2: -1 }],
    ['reports:nightly', { kind: 'bigint', key: 7133430415919207395n }],
    ['abcdefghi', { kind: 'pair', key1: -1014292916, key2: -1179391790 }],
    ['abcdefghij', { kind: 'bigint', key: -1533680579028349738n }],
    ['\u0000', { kind: 'pair', key1: 16777215, key2: -1 }],
    ['\u007f'.repeat(9), { kind: 'pair', key1: -1, key2: -2 }],
    ['é', { kind: 'bigint', key: -9173619709315246657n }],
    ['漢', { kind: 'bigint', key: -9123882072524611761n }],
    ['🔒', { kind: 'bigint', key: 8859756729228024218n }],
    ['naïve café', { kind: 'bigint', key: -7670175658714942614n }],
    ['abcdefghé', { kind: 'bigint', key: 2229107370801331214n }],
    ['x'.repeat(1000), { kind: 'bigint', key: 3376925640998973379n }],
    ['The quick brown fox jumps over the lazy dog', { kind: 'bigint', key: -276921371737336785n }],
    ['0123456789abcdef', { kind: 'bigint', key: 81985529216486895n }],
    ['0123456789ABCDEF', { kind: 'bigint', key: 81985529216486895n }],
    ['f'.repeat(16), { kind: 'bigint', key: -1n }],
    ['8000000000000000', { kind: 'bigint', key: -9223372036854775808n }],
    ['00000003,ffffffff', { kind: 'pair', key1: 3, key2: -1 }],
    ['7FFFFFFF,80000000', { kind: 'pair', key1: 2147483647, key2: -2147483648 }],
    ['0123456789abcdeg', { kind: 'bigint', key: 8261140907795711218n }],
    ['00000003;ffffffff', { kind: 'bigint', key: 3631397326658488740n }],
    ['MyLockName', { kind: 'bigint', key: 4062898426641073528n }],
    ['漢'.repeat(18), { kind: 'bigint', key: -5707277204051710361n }],
    ['\u0000\u0000', { kind: 'pair', key1: 131071, key2: -1 }],
    [' 1234567,00000000', { kind: 'bigint', key: -3182822559492143025n }],
    ['+1234567,00000000', { kind: 'bigint', key: -8926085739203679411n }],
  ],
  sqlx: [
    ['', { kind: 'bigint', key: 8559922135585776354n }],
    ['a', { kind: 'bigint', key: -2537430154616479981n }],
    ['lock', { kind: 'bigint', key: -1591312720228986843n }],
    ['reports:nightly', { kind: 'bigint', key: -3465586609658599739n }],
    ['abcdefghi', { kind: 'bigint', key: 144203613912637364n }],
    ['abcdefghij', { kind: 'bigint', key: 7987367640031844202n }],
    ['\u0000', { kind: 'bigint', key: -8386191657010753043n }],
    ['\u007f'.repeat(9), { kind: 'bigint', key: -7837128837312190412n }],
    ['é', { kind: 'bigint', key: -7378997142394345904n }],
    ['漢', { kind: 'bigint', key: 6232797271104364672n }],
    ['🔒', { kind: 'bigint', key: -2174858188468066231n }],
    ['naïve café', { kind: 'bigint', key: 7269097506243724882n }],
    ['abcdefghé', { kind: 'bigint', key: 7480491970876813199n }],
    ['x'.repeat(1000), { kind: 'bigint', key: 7820946800567525258n }],
    ['The quick brown fox jumps over the lazy dog', { kind: 'bigint', key: 7849561394526076341n }],
    ['my first Postgres advisory lock!', { kind: 'bigint', key: -5560419505042474287n }],
  ],
  postgresqlLock: [
    ['', { kind: 'bigint', key: -2721964255587120371n }],
    ['a', { kind: 'bigint', key: -8721251224300181508n }],
    ['lock', { kind: 'bigint', key: -2227177951003976475n }],
    ['reports:nightly', { kind: 'bigint', key: -2030045695078432926n }],
    ['abcdefghi', { kind: 'bigint', key: -4162704903857719817n }],
    ['abcdefghij', { kind: 'bigint', key: -2986984275128764438n }],
    ['\u0000', { kind: 'bigint', key: 6604876976489494847n }],
    ['\u007f'.repeat(9), { kind: 'bigint', key: -3623295882336614345n }],
    ['é', { kind: 'bigint', key: -4677623243354296192n }],
    ['漢', { kind: 'bigint', key: 5737477548623094145n }],
    ['🔒', { kind: 'bigint', key: -7324819046301567878n }],
    ['naïve café', { kind: 'bigint', key: 7688614822267555477n }],
    ['abcdefghé', { kind: 'bigint', key: 1043940018061700894n }],
    ['x'.repeat(1000), { kind: 'bigint', key: -4328057575275766482n }],
    ['The quick brown fox jumps over the lazy dog', { kind: 'bigint', key: 3446627857414826236n }],
  ],
  withAdvisoryLock: [
    ['', { kind: 'pair', key1: 0, key2: 0 }],
    ['a', { kind: 'pair', key1: 1756872259, key2: 0 }],
    ['lock', { kind: 'pair', key1: 126851854, key2: 0 }],
    ['reports:nightly', { kind: 'pair', key1: 118573106, key2: 0 }],
    ['abcdefghi', { kind: 'pair', key1: 229214383, key2: 0 }],
    ['abcdefghij', { kind: 'pair', key1: 964784186, key2: 0 }],
    ['\u0000', { kind: 'pair', key1: 1375924109, key2: 0 }],
    ['\u007f'.repeat(9), { kind: 'pair', key1: 593061229, key2: 0 }],
    ['é', { kind: 'pair', key1: 235179326, key2: 0 }],
    ['漢', { kind: 'pair', key1: 579229296, key2: 0 }],
    ['🔒', { kind: 'pair', key1: 1514244864, key2: 0 }],
    ['naïve café', { kind: 'pair', key1: 1777042389, key2: 0 }],
    ['abcdefghé', { kind: 'pair', key1: 1862580051, key2: 0 }],
    ['x'.repeat(1000), { kind: 'pair', key1: 994167270, key2: 0 }],
    ['The quick brown fox jumps over the lazy dog', { kind: 'pair', key1: 1095738169, key2: 0 }],
  ],
  advisoryLock: [
    ['', { kind: 'pair', key1: 1120186595, key2: 337443992 }],
    ['a', { kind: 'pair', key1: 310482890, key2: -893576246 }],
    ['lock', { kind: 'pair', key1: -2046491892, key2: 82141076 }],
    ['reports:nightly', { kind: 'pair', key1: -386951712, key2: 687099728 }],
    ['abcdefghi', { kind: 'pair', key1: -234697703, key2: -985861011 }],
    ['abcdefghij', { kind: 'pair', key1: 1637038450, key2: 1417112282 }],
    ['\u0000', { kind: 'pair', key1: -1676987282, key2: -1736788993 }],
    ['\u007f'.repeat(9), { kind: 'pair', key1: -1855188546, key2: 988963163 }],
    ['é', { kind: 'pair', key1: 2119539018, key2: 1405301568 }],
    ['漢', { kind: 'pair', key1: 1628282876, key2: 1778876637 }],
    ['🔒', { kind: 'pair', key1: -288169622, key2: -359492306 }],
    ['naïve café', { kind: 'pair', key1: -664082392, key2: 701568156 }],
    ['abcdefghé', { kind: 'pair', key1: 1977961220, key2: -1099508006 }],
    ['x'.repeat(1000), { kind: 'pair', key1: 1144387652, key2: 62563732 }],
    ['The quick brown fox jumps over the lazy dog', { kind: 'pair', key1: -1275352873, key2: -1803495673 }],
  ],
}

function expectInvalid(input: unknown, mentions: string): void {
  let thrown: unknown
  try {
    lockKey(input as LockKeyInput)
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(InvalidLockKeyError)
  const error = thrown as InvalidLockKeyError
  expect(error.code).toBe('INVALID_KEY')
  expect(error.name).toBe('InvalidLockKeyError')
  expect(error.value).toBe(input)
  expect(error.message).toContain(mentions)
}

describe('keyDerivations', () => {
  it('exposes exactly the six documented derivations, frozen', () => {
    expect(Object.keys(keyDerivations).sort()).toEqual(
      ['advisoryLock', 'distributedLock', 'postgresqlLock', 'sha256', 'sqlx', 'withAdvisoryLock'].sort(),
    )
    expect(Object.isFrozen(keyDerivations)).toBe(true)
  })

  for (const [name, vectors] of Object.entries(VECTORS)) {
    const derivation = keyDerivations[name as keyof typeof keyDerivations]
    describe(name, () => {
      it.each(vectors.map(([input, key]) => [JSON.stringify(input).slice(0, 40), input, key] as const))(
        'matches the independent vector for %s',
        (_label, input, key) => {
          const derived = derivation(input)
          expect(derived).toEqual(key)
          expect(Object.isFrozen(derived)).toBe(true)
          expect(lockKey(input, derivation)).toEqual(key)
        },
      )
    })
  }
})

describe('published values', () => {
  it("DistributedLock: '漢' x 18 hashes to -5707277204051710361", () => {
    expect(lockKey('漢'.repeat(18), keyDerivations.distributedLock)).toEqual({
      kind: 'bigint',
      key: -5707277204051710361n,
    })
  })

  it("DistributedLock: 'MyLockName' (10 chars, so hashed) is 4062898426641073528", () => {
    expect(lockKey('MyLockName', keyDerivations.distributedLock)).toEqual({
      kind: 'bigint',
      key: 4062898426641073528n,
    })
  })

  it("DistributedLock: '00000003,ffffffff' is the pair (3, -1)", () => {
    expect(lockKey('00000003,ffffffff', keyDerivations.distributedLock)).toEqual({
      kind: 'pair',
      key1: 3,
      key2: -1,
    })
  })

  it("sqlx: 'my first Postgres advisory lock!' is -5560419505042474287", () => {
    expect(lockKey('my first Postgres advisory lock!', keyDerivations.sqlx)).toEqual({
      kind: 'bigint',
      key: -5560419505042474287n,
    })
  })
})

describe('string derivation edge cases', () => {
  it('uses sha256 when no derivation is given', () => {
    for (const name of ['', 'reports:nightly', '漢']) {
      expect(lockKey(name)).toEqual(keyDerivations.sha256(name))
    }
    expect(lockKey('')).toEqual({ kind: 'bigint', key: 1449310910991872227n })
  })

  it('encodes a lone surrogate as U+FFFD, like .NET and WHATWG UTF-8 encoders', () => {
    for (const derivation of Object.values(keyDerivations)) {
      expect(derivation('a\ud800')).toEqual(derivation('a\ufffd'))
    }
  })

  it('gives distinct ids to ASCII names that differ only in trailing NULs', () => {
    const ids = ['', '\u0000', '\u0000\u0000'].map((name) => keyId(keyDerivations.distributedLock(name)))
    expect(new Set(ids).size).toBe(3)
  })

  it('rejects a derivation result that is not a valid LockKey', () => {
    const bad: ReadonlyArray<() => unknown> = [
      () => ({ kind: 'bigint', key: 2n ** 64n }),
      () => ({ kind: 'bigint', key: 1 }),
      () => ({ kind: 'pair', key1: 2 ** 31, key2: 0 }),
      () => ({ kind: 'pair', key1: 1.5, key2: 0 }),
      () => ({ kind: 'other' }),
      () => 42n,
      () => null,
      () => undefined,
      () => [1, 2],
    ]
    for (const derivation of bad) {
      let thrown: unknown
      try {
        lockKey('name', derivation as KeyDerivation)
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(InvalidLockKeyError)
      expect((thrown as InvalidLockKeyError).code).toBe('INVALID_KEY')
      expect((thrown as InvalidLockKeyError).value).toBe('name')
      expect((thrown as Error).message).toContain('"name"')
      expect((thrown as Error).message).toContain('derivation returned an invalid key')
    }
  })

  it('passes a valid derivation result through as a frozen normalised copy', () => {
    const returned = { kind: 'pair', key1: -0, key2: 5, extra: true } as const
    const key = lockKey('name', () => returned)
    expect(key).toEqual({ kind: 'pair', key1: 0, key2: 5 })
    expect(Object.is((key as { key1: number }).key1, 0)).toBe(true)
    expect(key).not.toBe(returned)
    expect(Object.isFrozen(key)).toBe(true)
  })

  it('lets an error thrown by the derivation propagate unchanged', () => {
    const boom = new Error('boom')
    expect(() =>
      lockKey('name', () => {
        throw boom
      }),
    ).toThrow(boom)
  })

  it('rejects a derivation that is not a function with InvalidOptionsError', () => {
    for (const derivation of [null, 'sha256', 42, {}]) {
      let thrown: unknown
      try {
        lockKey('name', derivation as unknown as KeyDerivation)
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(InvalidOptionsError)
      expect((thrown as InvalidOptionsError).code).toBe('INVALID_OPTIONS')
      expect((thrown as InvalidOptionsError).option).toBe('keyDerivation')
    }
  })
})

describe('lockKey validation', () => {
  it.each([
    ['NaN', Number.NaN, 'NaN'],
    ['a fraction', 1.5, '1.5'],
    ['2**53', 2 ** 53, '9007199254740992'],
    ['-(2**53)', -(2 ** 53), '-9007199254740992'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['2n**63n', 2n ** 63n, '9223372036854775808n'],
    ['-(2n**63n) - 1n', -(2n ** 63n) - 1n, '-9223372036854775809n'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['true', true, 'true'],
    ['false', false, 'false'],
    ['a symbol', Symbol('k'), 'Symbol(k)'],
    ['a function', () => 1, '[function]'],
    ['a plain object', { a: 1 }, '[object]'],
    ['a Date', new Date(0), '[object]'],
    ['a boxed string', Object('abc'), '[object]'],
    ['an empty array', [], 'array(0)'],
    ['a 1-element array', [1], 'array(1)'],
    ['a 3-element array', [1, 2, 3], 'array(3)'],
    ['a pair with a fraction', [1, 1.5], 'array(2)'],
    ['a pair with NaN', [Number.NaN, 1], 'array(2)'],
    ['a pair above int4', [2 ** 31, 0], 'array(2)'],
    ['a pair below int4', [0, -(2 ** 31) - 1], 'array(2)'],
    ['a pair of bigints', [1n, 2n], 'array(2)'],
    ['a pair of strings', ['1', '2'], 'array(2)'],
    ['a sparse pair', [1, undefined], 'array(2)'],
    ['a bigint LockKey out of range', { kind: 'bigint', key: 2n ** 63n }, '[object]'],
    ['a bigint LockKey with a number key', { kind: 'bigint', key: 1 }, '[object]'],
    ['a pair LockKey with a missing key2', { kind: 'pair', key1: 1 }, '[object]'],
    ['a pair LockKey out of range', { kind: 'pair', key1: 0, key2: 2 ** 31 }, '[object]'],
    ['an object with an unknown kind', { kind: 'int', key: 1n }, '[object]'],
  ])('rejects %s', (_label, input, mentions) => {
    expectInvalid(input, mentions)
  })

  it('accepts the bigint boundaries', () => {
    expect(lockKey(2n ** 63n - 1n)).toEqual({ kind: 'bigint', key: 9223372036854775807n })
    expect(lockKey(-(2n ** 63n))).toEqual({ kind: 'bigint', key: -9223372036854775808n })
    expect(lockKey(0n)).toEqual({ kind: 'bigint', key: 0n })
  })

  it('accepts safe integers, turning them into bigint keys', () => {
    expect(lockKey(Number.MAX_SAFE_INTEGER)).toEqual({ kind: 'bigint', key: 9007199254740991n })
    expect(lockKey(Number.MIN_SAFE_INTEGER)).toEqual({ kind: 'bigint', key: -9007199254740991n })
    expect(lockKey(42)).toEqual({ kind: 'bigint', key: 42n })
    expect(lockKey(-0)).toEqual({ kind: 'bigint', key: 0n })
  })

  it('accepts the int4 pair boundaries and folds -0 into 0', () => {
    expect(lockKey([2 ** 31 - 1, -(2 ** 31)])).toEqual({ kind: 'pair', key1: 2147483647, key2: -2147483648 })
    const zero = lockKey([-0, -0])
    expect(zero).toEqual({ kind: 'pair', key1: 0, key2: 0 })
    expect(Object.is((zero as { key1: number }).key1, 0)).toBe(true)
    expect(Object.is((zero as { key2: number }).key2, 0)).toBe(true)
  })

  it('accepts any string, including the empty string', () => {
    expect(lockKey('').kind).toBe('bigint')
    expect(lockKey(' ').kind).toBe('bigint')
  })

  it('returns frozen keys for every input form', () => {
    const inputs: LockKeyInput[] = [
      1n,
      1,
      [1, 2],
      'name',
      { kind: 'bigint', key: 1n },
      { kind: 'pair', key1: 1, key2: 2 },
    ]
    for (const input of inputs) expect(Object.isFrozen(lockKey(input))).toBe(true)
  })

  it('passes a LockKey object through as a normalised frozen copy', () => {
    const bigint = { kind: 'bigint', key: 5n, label: 'x' } as LockKey
    expect(lockKey(bigint)).toEqual({ kind: 'bigint', key: 5n })
    expect(lockKey(bigint)).not.toBe(bigint)
    expect(Object.keys(lockKey(bigint))).toEqual(['kind', 'key'])

    const pair: LockKey = { kind: 'pair', key1: -0, key2: -7 }
    const copy = lockKey(pair)
    expect(copy).toEqual({ kind: 'pair', key1: 0, key2: -7 })
    expect(Object.is((copy as { key1: number }).key1, 0)).toBe(true)

    const again = lockKey(copy)
    expect(again).toEqual(copy)
  })

  it('ignores the derivation for non-string inputs', () => {
    const never: KeyDerivation = () => {
      throw new Error('must not be called')
    }
    expect(lockKey(7n, never)).toEqual({ kind: 'bigint', key: 7n })
    expect(lockKey([1, 2], never)).toEqual({ kind: 'pair', key1: 1, key2: 2 })
  })

  it('keeps the bigint and pair key spaces separate', () => {
    const single = lockKey(1n)
    const pair = lockKey([0, 1])
    expect(single).not.toEqual(pair)
    expect(keyId(single)).not.toBe(keyId(pair))
    // Same 64 bits on the wire, told apart on the server only by objsubid.
    expect(pgLocksIdentity(single)).toEqual({ classid: '0', objid: '1', objsubid: 1 })
    expect(pgLocksIdentity(pair)).toEqual({ classid: '0', objid: '1', objsubid: 2 })
  })
})

describe('keyId', () => {
  it('is canonical per key and distinct across kinds', () => {
    expect(keyId(lockKey(-5n))).toBe('b:-5')
    expect(keyId(lockKey(-5))).toBe('b:-5')
    expect(keyId(lockKey([3, -4]))).toBe('p:3:-4')
    expect(keyId(lockKey([-0, 0]))).toBe('p:0:0')
    expect(keyId(lockKey({ kind: 'pair', key1: 3, key2: -4 }))).toBe('p:3:-4')
  })
})

describe('keyParams', () => {
  it('renders the SQL parameters as decimal strings', () => {
    expect(keyParams(lockKey(-(2n ** 63n)))).toEqual(['-9223372036854775808'])
    expect(keyParams(lockKey(2n ** 63n - 1n))).toEqual(['9223372036854775807'])
    expect(keyParams(lockKey([-2147483648, 2147483647]))).toEqual(['-2147483648', '2147483647'])
    expect(keyParams(lockKey([-0, 0]))).toEqual(['0', '0'])
  })
})

describe('pgLocksIdentity', () => {
  // Values observed in pg_locks on a real server for these keys.
  it.each([
    ['-1n', lockKey(-1n), { classid: '4294967295', objid: '4294967295', objsubid: 1 }],
    ['2n**40n + 5n', lockKey(2n ** 40n + 5n), { classid: '256', objid: '5', objsubid: 1 }],
    ['int8 max', lockKey(9223372036854775807n), { classid: '2147483647', objid: '4294967295', objsubid: 1 }],
    ['int8 min', lockKey(-(2n ** 63n)), { classid: '2147483648', objid: '0', objsubid: 1 }],
    ['pair (-1, 7)', lockKey([-1, 7]), { classid: '4294967295', objid: '7', objsubid: 2 }],
    ['pair (3, int4 min)', lockKey([3, -2147483648]), { classid: '3', objid: '2147483648', objsubid: 2 }],
  ])('maps %s to the server view', (_label, key, identity) => {
    expect(pgLocksIdentity(key)).toEqual(identity)
  })

  it('round-trips a bigint key through (classid << 32) | objid', () => {
    for (const k of [-1n, 0n, 1n, 2n ** 40n + 5n, 2n ** 63n - 1n, -(2n ** 63n), -123456789012345n]) {
      const { classid, objid } = pgLocksIdentity(lockKey(k))
      expect(BigInt.asIntN(64, (BigInt(classid) << 32n) | BigInt(objid))).toBe(k)
    }
  })
})

describe('[namespace, id] pairs', () => {
  // Independent vectors: Python's int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], 'little', signed=True).
  it.each([
    ['jobs', -887645603],
    ['invoice', -555493806],
    ['', 1120186595],
    ['é', 2119539018],
    ['漢字', 1905775302],
  ] as const)('[%j, id] uses key1 = %i', (namespace, key1) => {
    expect(lockKey([namespace, 42])).toEqual({ kind: 'pair', key1, key2: 42 })
    expect(lockKey([namespace, -2147483648])).toEqual({ kind: 'pair', key1, key2: -2147483648 })
  })

  it('is independent of the locker derivation and equals advisory-lock’s first key', () => {
    expect(lockKey(['jobs', 7], keyDerivations.sqlx)).toEqual(lockKey(['jobs', 7]))
    const advisory = keyDerivations.advisoryLock('jobs')
    expect(advisory.kind === 'pair' && advisory.key1).toBe(lockKey(['jobs', 7]).kind === 'pair' && -887645603)
  })

  it.each([
    [['jobs', 1.5]],
    [['jobs', 2 ** 31]],
    [['jobs', '42']],
    [[42, 'jobs']],
    [['jobs']],
    [['jobs', 1, 2]],
  ])('rejects %j', (input) => {
    expect(() => lockKey(input as never)).toThrow(InvalidLockKeyError)
  })
})
