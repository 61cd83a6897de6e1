import net from 'node:net'

type Pair = readonly [client: net.Socket, server: net.Socket]

/**
 * A TCP relay in front of the server that can go silent, as a network partition or a stopped backend
 * does: every connection through it (and every new one, such as a driver's cancel request) stops
 * carrying bytes either way, while both ends stay open. `close()` ends the partition with a reset:
 * each side then sees its peer gone, so the server ends the backends behind it.
 */
export class SilentProxy {
  readonly #pairs = new Set<Pair>()
  readonly #server: net.Server
  readonly #target: URL
  #silent = false

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
    const pair: Pair = [client, server]
    this.#pairs.add(pair)
    for (const socket of pair) {
      socket.on('error', () => {})
      // One side gone ends the other too, unless the partition is on: then nothing crosses.
      socket.on('close', () => {
        if (this.#silent) return
        for (const other of pair) other.destroy()
        this.#pairs.delete(pair)
      })
    }
    if (this.#silent) {
      client.pause()
    } else {
      client.pipe(server)
      server.pipe(client)
    }
  }

  /** From now on, no byte crosses, either way, on any connection. */
  silence(): void {
    this.#silent = true
    for (const [client, server] of this.#pairs) {
      client.unpipe(server)
      server.unpipe(client)
      client.pause()
      server.pause()
    }
  }

  /** Ends the partition: what was held up crosses now, and so does everything after it. */
  resume(): void {
    this.#silent = false
    for (const pair of this.#pairs) {
      const [client, server] = pair
      if (client.destroyed || server.destroyed) {
        for (const socket of pair) socket.destroy()
        this.#pairs.delete(pair)
        continue
      }
      client.pipe(server)
      server.pipe(client)
    }
  }

  /** Ends the partition with a reset on every connection, and accepts no new ones. Idempotent. */
  async close(): Promise<void> {
    this.#silent = false
    for (const pair of this.#pairs) for (const socket of pair) socket.resetAndDestroy()
    this.#pairs.clear()
    if (!this.#server.listening) return
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
