import type { Request } from 'express';

/** Where clients reach this server: the `servers` of the OpenAPI and AsyncAPI documents. */
export interface PublicOrigin {
  secure: boolean;
  /** `host` or `host:port`, as a client would write it in a URL. */
  host: string;
  /** A path prefix the server is mounted under behind a proxy (`/chat`), or ''. */
  prefix: string;
}

// A DNS name or an IPv4 address, or a bracketed IPv6 address, and an optional port. Anything else
// in a Host header is not an address we would hand to clients.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** PUBLIC_URL, read once at boot (app-config.ts has validated it). */
export function parsePublicUrl(text: string): PublicOrigin {
  const url = new URL(text);
  return { secure: url.protocol === 'https:', host: url.host, prefix: url.pathname.replace(/\/+$/, '') };
}

/**
 * The configured PUBLIC_URL when there is one. Otherwise the address this request came to: its
 * Host header (X-Forwarded-Host and X-Forwarded-Proto only from a proxy TRUST_PROXY trusts, as
 * Express decides), or null when that is not a plain host[:port].
 */
export function publicOrigin(req: Request, configured: PublicOrigin | null): PublicOrigin | null {
  if (configured) return configured;
  const host = req.host;
  if (!host || !HOST.test(host)) return null;
  return { secure: req.protocol === 'https', host, prefix: '' };
}

export const httpUrl = (o: PublicOrigin): string => `${o.secure ? 'https' : 'http'}://${o.host}${o.prefix}`;
