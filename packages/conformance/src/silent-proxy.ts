import net from 'node:net'

interface Pair {
  readonly client: net.Socket
  readonly server: net.Socket
  silent: boolean
}

/** PostgreSQL's ReadyForQuery message type: the end of a connection's start-up. */
const READY_FOR_QUERY = 0x5a

/**
 * A TCP relay in front of the server that can go silent, as a network partition or a stopped backend
 * does: a silent connection stops carrying bytes either way, while both ends stay open. `silence()`
 * silences every connection, including new ones such as a driver's cancel request (a partition);
 * `silenceExisting()` only those open now (a stopped backend on a server that otherwise answers);
 * `silenceAfterStartup()` each new one once its start-up is done (a partition between a connection's
 * start-up and its first statement).
 * `close()` ends it all with a reset: each side then sees its peer gone, so the server ends the
 * backends behind it.
 */
export class SilentProxy {
  readonly #pairs = new Set<Pair>()
  readonly #server: net.Server
  readonly #target: URL
  #silentNew = false
  #silentAfterStartup = false

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
    } else if (this.#silentAfterStartup) {
      client.pipe(server)
      this.#relayStartup(pair)
    } else {
      client.pipe(server)
      server.pipe(client)
    }
  }

  /**
   * Relays the server's messages until its first ReadyForQuery (the start-up is over, without TLS:
   * every server message is framed), then silences the connection.
   */
  #relayStartup(pair: Pair): void {
    let pending = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk])
      let end = 0
      while (pending.length - end >= 5) {
        const type = pending[end] as number
        const next = end + 1 + pending.readInt32BE(end + 1)
        if (next > pending.length) break
        end = next
        if (type === READY_FOR_QUERY) {
          pair.server.off('data', onData)
          pair.server.pause()
          pair.client.write(pending.subarray(0, end))
          if (end < pending.length) pair.server.unshift(pending.subarray(end))
          // resume() since the connection opened: relay it as usual.
          if (this.#silentAfterStartup) this.#silence(pair)
          else pair.server.pipe(pair.client)
          return
        }
      }
      pair.client.write(pending.subarray(0, end))
      pending = pending.subarray(end)
    }
    pair.server.on('data', onData)
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

  /**
   * From now on, each new connection goes silent as soon as the server has finished its start-up
   * (ReadyForQuery): it opens, and then answers nothing. Connections open now are left as they are.
   */
  silenceAfterStartup(): void {
    this.#silentAfterStartup = true
  }

  /** From now on, no byte crosses on the connections open now; new ones are relayed as usual. */
  silenceExisting(): void {
    for (const pair of this.#pairs) this.#silence(pair)
  }

  /** Ends the silence: what was held up crosses now, and so does everything after it. */
  resume(): void {
    this.#silentNew = false
    this.#silentAfterStartup = false
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
    this.#silentAfterStartup = false
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
