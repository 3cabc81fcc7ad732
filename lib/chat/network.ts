/**
 * The little the chat layer needs from a network: listen on a port, accept, connect, and byte
 * streams. TCP is the real one; memory_network.ts stands in for it in unit tests, the way
 * wireguard-go's `bindtest` stands in for UDP. End-to-end tests use real processes and TCP.
 * @module
 */
import type { Connection } from "../protocol/channel.ts";

/** A connected byte stream. */
export interface Conn extends Connection {
  /** Where the peer is. */
  readonly remoteAddr: Deno.NetAddr;
  /** Turns off Nagle's algorithm (TCP); may throw on a connection already reset. */
  setNoDelay?(noDelay?: boolean): void;
}

/** A listening port. `accept` throws once it is closed. */
export interface Listener {
  readonly addr: Deno.NetAddr;
  accept(): Promise<Conn>;
  close(): void;
}

/** Where to listen or connect. */
export interface Endpoint {
  hostname: string;
  /** 0 to listen on any free port. */
  port: number;
}

/** A network: TCP, or an in-memory one in tests. */
export interface Network {
  /** Listens on `endpoint`; throws Deno.errors.AddrInUse if the port is taken. */
  listen(endpoint: Endpoint): Listener;
  /** Connects to `endpoint`; rejects (ConnectionRefused) if nothing listens there. */
  connect(endpoint: Endpoint): Promise<Conn>;
}

/** TCP, through Deno's sockets. */
export const TCP: Network = {
  listen: ({ hostname, port }) => Deno.listen({ hostname, port, transport: "tcp" }),
  connect: ({ hostname, port }) => Deno.connect({ hostname, port, transport: "tcp" }),
};

/** `host:port` of an address, for logs (IPv6 in brackets). */
export function describe(address: Deno.NetAddr): string {
  return address.hostname.includes(":")
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}
