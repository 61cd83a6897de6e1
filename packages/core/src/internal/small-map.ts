/**
 * A map that keeps its first entry in fields and only makes a `Map` for more. A session mostly holds
 * one lock at a time, taken and released over and over: a `Map` whose only entry comes and goes
 * rebuilds its table at every delete (an allocation on every release of a contended lock), where
 * this costs nothing. Keys compare with `===` (the core's keys are strings and handles).
 */
export class SmallMap<K, V> {
  #has = false
  #key: K | undefined
  #value: V | undefined
  #more: Map<K, V> | undefined

  get size(): number {
    return (this.#has ? 1 : 0) + (this.#more === undefined ? 0 : this.#more.size)
  }

  has(key: K): boolean {
    return (this.#has && this.#key === key) || (this.#more?.has(key) ?? false)
  }

  get(key: K): V | undefined {
    if (this.#has && this.#key === key) return this.#value
    return this.#more?.get(key)
  }

  set(key: K, value: V): void {
    if (this.#has && this.#key === key) {
      this.#value = value
    } else if (!this.#has && !(this.#more?.has(key) ?? false)) {
      this.#has = true
      this.#key = key
      this.#value = value
    } else {
      this.#more ??= new Map()
      this.#more.set(key, value)
    }
  }

  delete(key: K): boolean {
    if (this.#has && this.#key === key) {
      this.#has = false
      this.#key = undefined
      this.#value = undefined
      return true
    }
    return this.#more?.delete(key) ?? false
  }

  clear(): void {
    this.#has = false
    this.#key = undefined
    this.#value = undefined
    this.#more = undefined
  }

  /** The keys now, as an array (safe to use while entries come and go). */
  keys(): K[] {
    const keys = this.#has ? [this.#key as K] : []
    if (this.#more !== undefined) for (const key of this.#more.keys()) keys.push(key)
    return keys
  }
}
