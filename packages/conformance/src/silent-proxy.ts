import net from 'node:net'

interface Pair {
  readonly client: net.Socket
  readonly server: net.Socket
  silent: boolean
}

/**
 * A TCP relay in front of the server that can go silent, as a network partition or a stopped backend
 * does: a silent connection stops carrying bytes either way, while both ends stay open. `silence()`
 * silences every connection, including new ones such as a driver's cancel request (a partition);
 * `silenceExisting()` only those open now (a stopped backend on a server that otherwise answers).
 * `close()` ends it all with a reset: each side then sees its peer gone, so the server ends the
 * backends behind it.
 */
export class SilentProxy {
  readonly #pairs = new Set<Pair>()
  readonly #server: net.Server
  readonly #target: URL
  #silentNew = false

  private constructor(target: string) {
    this.#target = new URL(target)
    this.#server = net.createServer((client) => this.#relay(client))
  }

  /** Starts a relay to the server of `target` (a postgres:// URL) on a free local port. */
  static async start(target: string): Promise<SilentProxy> {
    const proxy = new SilentProxy(target)
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  /** The target URL with this relay in place of the server. */
  get url(): string {
    const url = new URL(this.#target)
    url.hostname = '127.0.0.1'
    url.port = String((this.#server.address() as net.AddressInfo).port)
    return url.toString()
  }

  #relay(client: net.Socket): void {
    const server = net.connect(Number(this.#target.port || 5432), this.#target.hostname)
    const pair: Pair = { client, server, silent: false }
    this.#pairs.add(pair)
    for (const socket of [client, server]) {
      socket.on('error', () => {})
      // One side gone ends the other too, unless the connection is silent: then nothing crosses.
      socket.on('close', () => {
        if (pair.silent) return
        client.destroy()
        server.destroy()
        this.#pairs.delete(pair)
      })
    }
    if (this.#silentNew) {
      pair.silent = true
      client.pause()
    } else {
      client.pipe(server)
      server.pipe(client)
    }
  }

  #silence(pair: Pair): void {
    pair.silent = true
    pair.client.unpipe(pair.server)
    pair.server.unpipe(pair.client)
    pair.client.pause()
    pair.server.pause()
  }

  /** From now on, no byte crosses, either way, on any connection, new ones included. */
  silence(): void {
    this.#silentNew = true
    for (const pair of this.#pairs) this.#silence(pair)
  }

  /** From now on, no byte crosses on the connections open now; new ones are relayed as usual. */
  silenceExisting(): void {
    for (const pair of this.#pairs) this.#silence(pair)
  }

  /** Ends the silence: what was held up crosses now, and so does everything after it. */
  resume(): void {
    this.#silentNew = false
    for (const pair of this.#pairs) {
      if (!pair.silent) continue
      pair.silent = false
      if (pair.client.destroyed || pair.server.destroyed) {
        pair.client.destroy()
        pair.server.destroy()
        this.#pairs.delete(pair)
        continue
      }
      pair.client.pipe(pair.server)
      pair.server.pipe(pair.client)
    }
  }

  /** Ends every connection with a reset, and accepts no new ones. Idempotent. */
  async close(): Promise<void> {
    this.#silentNew = false
    for (const pair of this.#pairs) {
      pair.silent = false
      pair.client.resetAndDestroy()
      pair.server.resetAndDestroy()
    }
    this.#pairs.clear()
    if (!this.#server.listening) return
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
