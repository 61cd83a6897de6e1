import { describe, expect, it } from 'vitest'
import { SmallMap } from '../src/internal/small-map.js'

describe('SmallMap (a session’s holds and keys)', () => {
  it('behaves as a Map through the first entry coming and going while others stay', () => {
    const map = new SmallMap<string, number>()
    expect(map.size).toBe(0)
    map.set('a', 1) // in the fields
    map.set('b', 2) // in the Map
    map.set('c', 3)
    expect(map.size).toBe(3)
    expect(map.keys()).toEqual(['a', 'b', 'c'])
    expect(map.delete('a')).toBe(true)
    expect(map.has('a')).toBe(false)
    expect(map.get('a')).toBeUndefined()
    // A key already in the Map is updated there, not added again in the free fields.
    map.set('b', 20)
    expect(map.size).toBe(2)
    expect(map.get('b')).toBe(20)
    map.set('d', 4) // the free fields
    expect(map.size).toBe(3)
    expect(map.keys().sort()).toEqual(['b', 'c', 'd'])
    map.set('d', 40)
    expect(map.get('d')).toBe(40)
    expect(map.size).toBe(3)
    expect(map.delete('c')).toBe(true)
    expect(map.delete('c')).toBe(false)
    expect(map.delete('missing')).toBe(false)
    expect([map.has('b'), map.has('c'), map.has('d')]).toEqual([true, false, true])
    map.clear()
    expect(map.size).toBe(0)
    expect(map.keys()).toEqual([])
    expect(map.has('b')).toBe(false)
  })

  it('returns a snapshot of the keys, safe to use while entries are deleted', () => {
    const map = new SmallMap<object, true>()
    const handles = [{}, {}, {}]
    for (const handle of handles) map.set(handle, true)
    for (const handle of map.keys()) map.delete(handle)
    expect(map.size).toBe(0)
  })
})
