import { type KeyDerivation, type LockKey, type LockKeyInput, lockKey } from '../keys.js'
import { Memo } from './memo.js'

/** Names whose keys a locker keeps. */
const NAMES_KEPT = 1_024

/**
 * A locker's `lockKey`: the keys of the names it derived lately are kept, so that a name locked again
 * skips its derivation (a SHA-256 by default: about 3 µs, nearly all of what turning a key input into a
 * LockKey costs). Derivations map a name to the same id every time (other libraries share those ids),
 * so a kept key is what the derivation would return; LockKeys are frozen, so one serves every acquire
 * of its name. Other inputs cost well under a microsecond and are not kept.
 */
export class KeyCache {
  readonly #names = new Memo<LockKey>(NAMES_KEPT)
  readonly #derivation: KeyDerivation
  readonly #derive: (name: string) => LockKey

  constructor(derivation: KeyDerivation) {
    this.#derivation = derivation
    this.#derive = (name) => lockKey(name, derivation)
  }

  /** `lockKey(input, derivation)`; throws as it does (a name whose derivation fails is not kept). */
  lockKey(input: LockKeyInput): LockKey {
    return typeof input === 'string' ? this.#names.get(input, this.#derive) : lockKey(input, this.#derivation)
  }
}
