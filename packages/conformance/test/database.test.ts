import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { maskUrl, startTestDatabase } from '../src/database.js'

/** Runs `fn` with the given environment variables set (string) or removed (undefined), then restores them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]))
  const apply = (values: Record<string, string | undefined>): void => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
  apply(vars)
  try {
    return await fn()
  } finally {
    apply(saved)
  }
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(sql)).rows
  } finally {
    await client.end()
  }
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })
}

describe('test database', () => {
  it('the global setup provides a reachable database', async () => {
    const url = inject('pglockDatabaseUrl')
    expect(url).toMatch(/^postgres(ql)?:\/\//)
    expect(inject('pglockDatabaseVersion')).toMatch(/^\d+(\.\d+)?/)
    expect(await query<{ one: number }>(url, 'select 1 as one')).toEqual([{ one: 1 }])
  })

  it('starts a second embedded server with settings, and stop() leaves nothing behind', async () => {
    const db = await withEnv({ PGLOCK_TEST_DATABASE_URL: undefined, PGLOCK_TEST_PG: undefined }, () =>
      startTestDatabase({ settings: { max_locks_per_transaction: 128 } }),
    )
    let dataDirectory: string
    try {
      expect(db.source).toBe('embedded')
      expect(db.version).toMatch(/^\d+\.\d+/)
      expect(db.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres$/)
      const [row] = await query<{ locks: string; max: string; dir: string }>(
        db.url,
        `select current_setting('max_locks_per_transaction') as locks,
                current_setting('max_connections') as max,
                current_setting('data_directory') as dir`,
      )
      expect(row?.locks).toBe('128')
      expect(row?.max).toBe('300')
      dataDirectory = row?.dir ?? ''
      expect(existsSync(dataDirectory)).toBe(true)
    } finally {
      await db.stop()
    }
    await db.stop() // idempotent
    expect(existsSync(dataDirectory)).toBe(false)
    expect(await connectionRefused(Number(new URL(db.url).port))).toBe(true)
  })

  it('rejects loudly, with the password masked, when PGLOCK_TEST_DATABASE_URL is unreachable', async () => {
    const url = 'postgres://postgres:x@127.0.0.1:1/postgres'
    const started = withEnv({ PGLOCK_TEST_DATABASE_URL: url, PGLOCK_TEST_PG: undefined }, () =>
      startTestDatabase(),
    )
    await expect(started).rejects.toThrow('could not be reached')
    await expect(started).rejects.toThrow('***')
    await expect(started).rejects.toThrow(/ECONNREFUSED/)
    await expect(started).rejects.not.toThrow(':x@')
  })

  it('rejects with a clear message when PGLOCK_TEST_PG=testcontainers finds no Docker engine', async () => {
    const started = withEnv({ PGLOCK_TEST_DATABASE_URL: undefined, PGLOCK_TEST_PG: 'testcontainers' }, () =>
      startTestDatabase(),
    )
    await expect(started).rejects.toThrow('needs a running Docker engine')
    await expect(started).rejects.toThrow('Unset PGLOCK_TEST_PG')
  }, 120_000)

  it('maskUrl hides the password and nothing else', () => {
    expect(maskUrl('postgres://u:secret@h:5432/db')).toBe('postgres://u:***@h:5432/db')
    expect(maskUrl('postgres://u@h/db')).toBe('postgres://u@h/db')
    expect(maskUrl('postgres://h/db?password=secret&sslmode=disable')).toBe(
      'postgres://h/db?password=***&sslmode=disable',
    )
  })
})
