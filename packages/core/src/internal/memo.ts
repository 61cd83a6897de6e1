/**
 * Values computed from strings (or other primitives), the latest `size` of them kept: a string seen
 * again skips the computation. For pure, costly functions of a string (a hash of a lock name). Beyond
 * `size`, the oldest is forgotten, so a stream of distinct strings costs a Map insertion each and no
 * more memory.
 */
export class Memo<V, K = string> {
  readonly #kept = new Map<K, V>()
  readonly #size: number

  constructor(size: number) {
    this.#size = size
  }

  /** The value for `input`, from `compute(input)` when not kept (a throw is passed on, nothing kept). */
  get(input: K, compute: (input: K) => V): V {
    let value = this.#kept.get(input)
    if (value === undefined) {
      value = compute(input)
      if (this.#kept.size >= this.#size) {
        const oldest = this.#kept.keys().next().value
        if (oldest !== undefined) this.#kept.delete(oldest)
      }
      this.#kept.set(input, value)
    }
    return value
  }
}
