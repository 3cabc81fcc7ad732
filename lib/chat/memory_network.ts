/**
 * An in-memory Network for unit tests: listeners and connected byte streams inside one process,
 * with the behaviour of TCP that the chat layer relies on (a read returns null after the peer
 * closes, a write to a closed stream throws, a closed listener's accept throws BadResource,
 * connecting to a port nobody listens on is refused). No buffer limits: backpressure is left to
 * the end-to-end tests over real TCP.
 * @module
 */
import type { Conn, Endpoint, Listener, Network } from "./network.ts";

/** One direction of a stream: chunks written and not yet read, and a reader waiting for more. */
class Pipe {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  write(bytes: Uint8Array): void {
    if (this.#ended) throw new Deno.errors.BrokenPipe("the connection is closed");
    this.#chunks.push(bytes.slice());
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    const chunk = this.#chunks[0];
    const n = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }
}

/** One end of an in-memory connection. */
class MemoryConn implements Conn {
  #closed = false;

  constructor(
    readonly remoteAddr: Deno.NetAddr,
    readonly localAddr: Deno.NetAddr,
    readonly incoming: Pipe,
    readonly outgoing: Pipe,
  ) {}

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    return this.incoming.read(buffer);
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    this.outgoing.write(bytes);
    return Promise.resolve(bytes.length);
  }

  setNoDelay(): void {}

  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("closed");
    this.#closed = true;
    this.outgoing.end(); // the peer reads to the end, then null
    this.incoming.end(); // our pending read ends with null
  }
}

/** A port listening in memory. */
class MemoryListener implements Listener {
  readonly #pending: MemoryConn[] = [];
  #waiter: PromiseWithResolvers<MemoryConn> | undefined;
  #closed = false;

  constructor(readonly addr: Deno.NetAddr, readonly onClose: () => void) {}

  get closed(): boolean {
    return this.#closed;
  }

  /** Hands `conn` to accept(). */
  enqueue(conn: MemoryConn): void {
    if (this.#waiter) {
      this.#waiter.resolve(conn);
      this.#waiter = undefined;
    } else this.#pending.push(conn);
  }

  accept(): Promise<Conn> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    const next = this.#pending.shift();
    if (next) return Promise.resolve(next);
    this.#waiter = Promise.withResolvers<MemoryConn>();
    return this.#waiter.promise;
  }

  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("listener closed");
    this.#closed = true;
    this.onClose();
    this.#waiter?.reject(new Deno.errors.BadResource("listener closed"));
    for (const conn of this.#pending.splice(0)) conn.close();
  }
}

/**
 * A network that lives in this process. Every host name is one host; ports are taken from
 * 20000 up when 0 is asked for.
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_network.ts";
 * const net = new MemoryNetwork();
 * const listener = net.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await net.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * await client.write(new TextEncoder().encode("hi"));
 * const buffer = new Uint8Array(8);
 * await server.read(buffer); // 2
 * ```
 */
export class MemoryNetwork implements Network {
  readonly #listeners = new Map<number, MemoryListener>();
  #nextPort = 20000;
  #nextClientPort = 40000;

  listen({ hostname, port }: Endpoint): Listener {
    if (port === 0) { while (this.#listeners.has(port = this.#nextPort++)); }
    if (this.#listeners.has(port)) throw new Deno.errors.AddrInUse(`port ${port} is in use`);
    const addr: Deno.NetAddr = { transport: "tcp", hostname, port };
    const listener = new MemoryListener(addr, () => this.#listeners.delete(port));
    this.#listeners.set(port, listener);
    return listener;
  }

  connect({ hostname, port }: Endpoint): Promise<Conn> {
    const listener = this.#listeners.get(port);
    if (!listener || listener.closed) {
      return Promise.reject(new Deno.errors.ConnectionRefused(`nothing listens on ${port}`));
    }
    const clientAddr: Deno.NetAddr = { transport: "tcp", hostname, port: this.#nextClientPort++ };
    const [up, down] = [new Pipe(), new Pipe()];
    listener.enqueue(new MemoryConn(clientAddr, listener.addr, up, down));
    return Promise.resolve(new MemoryConn(listener.addr, clientAddr, down, up));
  }
}
