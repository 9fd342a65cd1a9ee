import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { addressKey } from '../rate-limit/http-rate-limiter.js';

/**
 * The client's address of a WebSocket upgrade, by the same TRUST_PROXY rule Express applies to
 * HTTP requests (Express uses proxy-addr too): behind a trusted proxy, the X-Forwarded-For hop;
 * otherwise the peer. A per-address quota that counted the proxy would lock everybody out. As a
 * key like the HTTP limits' (an IPv6 address counts as its /64).
 */
export function clientAddressOf(trustProxy: boolean | number | string[]): (req: IncomingMessage) => string {
  const trust =
    trustProxy === true ? () => true
    : trustProxy === false ? () => false
    : typeof trustProxy === 'number' ? (_addr: string, hop: number) => hop < trustProxy
    : proxyaddr.compile(trustProxy);
  return (req) => {
    const socket = req.socket as PeerCachingSocket;
    const cached = socket._peername;
    try {
      return addressKey(proxyaddr(req as Parameters<typeof proxyaddr>[0], trust));
    } catch {
      return addressKey(req.socket.remoteAddress ?? 'unknown');
    } finally {
      // Reading `remoteAddress` makes Node keep `{address, family, port}` on the socket
      // (`_peername`, ~100 B), and an upgraded socket lives as long as its WebSocket. Dropped:
      // Node reads it again from the OS if asked while the socket is open.
      if (cached === undefined && socket._peername !== undefined) socket._peername = undefined;
    }
  };
}

/** net.Socket's cache of its peer's address (Node internals: absent, it is just not dropped). */
type PeerCachingSocket = IncomingMessage['socket'] & { _peername?: unknown };
