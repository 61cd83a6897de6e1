import { describe, expect, it } from 'vitest'
import { Registry } from '../src/internal/registry.js'

describe('Registry (the locker’s acquires and sessions)', () => {
  it('keeps members in the order they were added, through deletes anywhere', () => {
    const registry = new Registry<string>()
    const a = registry.add('a')
    const b = registry.add('b')
    const c = registry.add('c')
    const d = registry.add('d')
    expect(registry.values()).toEqual(['a', 'b', 'c', 'd'])
    registry.delete(b) // middle
    expect(registry.values()).toEqual(['a', 'c', 'd'])
    registry.delete(a) // head
    registry.delete(d) // tail
    expect(registry.values()).toEqual(['c'])
    expect(registry.values()).toHaveLength(1)
    registry.add('e')
    expect(registry.values()).toEqual(['c', 'e'])
    registry.delete(c)
    expect(registry.values()).toEqual(['e'])
  })

  it('ignores a second delete of the same entry', () => {
    const registry = new Registry<number>()
    const one = registry.add(1)
    registry.add(2)
    registry.delete(one)
    registry.delete(one)
    expect(registry.values()).toHaveLength(1)
    expect(registry.values()).toEqual([2])
  })

  it('finds the first member that matches, oldest first', () => {
    const registry = new Registry<{ n: number }>()
    registry.add({ n: 1 })
    const two = registry.add({ n: 2 })
    registry.add({ n: 4 })
    expect(registry.find((x) => x.n % 2 === 0)).toEqual({ n: 2 })
    registry.delete(two)
    expect(registry.find((x) => x.n % 2 === 0)).toEqual({ n: 4 })
    expect(registry.find((x) => x.n > 10)).toBeUndefined()
  })

  it('a removed entry keeps no other member reachable', () => {
    const registry = new Registry<string>()
    registry.add('a')
    const b = registry.add('b')
    registry.add('c')
    registry.delete(b)
    expect(b.previous).toBeUndefined()
    expect(b.next).toBeUndefined()
  })

  it('values() is a snapshot: members may come and go while it is used', () => {
    const registry = new Registry<number>()
    const entries = [1, 2, 3].map((n) => registry.add(n))
    const seen: number[] = []
    for (const value of registry.values()) {
      seen.push(value)
      for (const entry of entries) registry.delete(entry)
      registry.add(value * 10)
    }
    expect(seen).toEqual([1, 2, 3])
    expect(registry.values()).toEqual([10, 20, 30])
  })
})
