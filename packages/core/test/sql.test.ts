/*
 * The one SQL builder that writes values into SQL text: underSavepointScript, for adapters that run a
 * transaction's savepoint, lock and release as one script. Checked here for what it inlines; the
 * postgres.js adapter's tests run its scripts on a real server.
 */
import { describe, expect, it } from 'vitest'
import { lockKey } from '../src/keys.js'
import { underSavepointScript, xactLockIfUnlimited, xactTryLock } from '../src/sql.js'

describe('underSavepointScript', () => {
  it('wraps the statement in the savepoint and inlines the key as quoted, cast integers', () => {
    expect(underSavepointScript(xactTryLock(lockKey(-9_223_372_036_854_775_808n), 'exclusive'))).toBe(
      'SAVEPOINT pglock_wait; ' +
        "SELECT pg_try_advisory_xact_lock('-9223372036854775808'::bigint) AS acquired; " +
        'RELEASE SAVEPOINT pglock_wait',
    )
    expect(underSavepointScript(xactTryLock(lockKey([-1, 2_147_483_647]), 'shared'))).toBe(
      'SAVEPOINT pglock_wait; ' +
        "SELECT pg_try_advisory_xact_lock_shared('-1'::int4, '2147483647'::int4) AS acquired; " +
        'RELEASE SAVEPOINT pglock_wait',
    )
    const untimed = underSavepointScript(xactLockIfUnlimited(lockKey(42n), 'exclusive'))
    expect(untimed).toContain("pg_advisory_xact_lock('42'::bigint)")
    expect(untimed).not.toContain('$')
  })

  it('refuses to inline anything but an integer, or a parameter that is missing', () => {
    expect(() =>
      underSavepointScript({ text: 'SELECT $1::bigint', params: ["1'; DROP TABLE t; --"] }),
    ).toThrow(/only integer parameters/)
    expect(() => underSavepointScript({ text: 'SELECT $2::int4', params: ['1'] })).toThrow(
      /only integer parameters/,
    )
  })
})
