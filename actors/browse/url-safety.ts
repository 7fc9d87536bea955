/**
 * The model chooses the URLs, so the browser treats every one as hostile: only http(s), and only publicly
 * routable addresses unless an operator allow-listed the host or network (the sandbox web on loopback).
 * Addresses are checked after DNS resolution inside the connection's own lookup, so the address that was
 * checked is the address connected to (no DNS rebinding between check and connect), and again on every
 * redirect hop (each hop is a new request through the same lookup).
 */
import dns from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { DrError } from '../../config/errors.ts';

export interface UrlPolicyOptions {
  /** Host names allowed whatever they resolve to (exact, case-insensitive), e.g. 'sandbox.local'. */
  allowHosts?: string[];
  /** Networks allowed even though not public, e.g. '127.0.0.1/32' for a sandbox on loopback. */
  allowCidrs?: string[];
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];
type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;
export type Lookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/** Strips the brackets WHATWG URL keeps around IPv6 literals. */
function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

export class UrlPolicy {
  private readonly allowHosts: ReadonlySet<string>;
  private readonly allowCidrs: readonly Cidr[];

  constructor(options: UrlPolicyOptions = {}) {
    this.allowHosts = new Set((options.allowHosts ?? []).map((h) => h.toLowerCase()));
    this.allowCidrs = (options.allowCidrs ?? []).map((cidr) => {
      try {
        return ipaddr.parseCIDR(cidr);
      } catch {
        throw new DrError(
          'BROWSE_CONFIG',
          `browse allow-list entry '${cidr}' is not a CIDR such as 127.0.0.1/32 or ::1/128`,
        );
      }
    });
  }

  /** Parses `raw` and checks what can be checked before resolving: scheme, credentials, IP literals. */
  checkUrl(raw: string, base?: string): URL {
    let url: URL;
    try {
      url = new URL(raw, base);
    } catch {
      throw new DrError(
        'BROWSE_BAD_URL',
        `'${raw.slice(0, 200)}' is not a valid URL; give an absolute http(s) URL`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new DrError(
        'BROWSE_BLOCKED_SCHEME',
        `only http and https URLs can be opened, not ${url.protocol}`,
        {
          details: { url: url.href.slice(0, 200) },
        },
      );
    }
    if (url.username !== '' || url.password !== '') {
      throw new DrError('BROWSE_BAD_URL', 'URLs with embedded credentials are not opened');
    }
    const host = bareHost(url.hostname);
    if (net.isIP(host) !== 0) this.checkAddress(host, host);
    return url;
  }

  /** Throws BROWSE_BLOCKED_ADDRESS unless `address` may be connected to for `hostname`. */
  checkAddress(address: string, hostname: string): void {
    if (this.allowHosts.has(hostname.toLowerCase())) return;
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      // process() turns IPv4-mapped IPv6 (::ffff:127.0.0.1) into the IPv4 address it stands for.
      ip = ipaddr.process(address);
    } catch {
      throw new DrError('BROWSE_BLOCKED_ADDRESS', `'${address}' is not an IP address`);
    }
    if (this.allowCidrs.some(([net, bits]) => ip.kind() === net.kind() && ip.match(net, bits))) return;
    const range = ip.range();
    if (range !== 'unicast') {
      throw new DrError(
        'BROWSE_BLOCKED_ADDRESS',
        `${hostname} resolves to ${ip.toString()} (${range}); only public addresses are opened unless allow-listed in browse.allowCidrs`,
        { details: { hostname, address: ip.toString(), range } },
      );
    }
  }

  /** A dns.lookup replacement for http(s).Agent: resolves, keeps only allowed addresses, and hands the
   * connection exactly those (so what was checked is what is connected to). */
  lookup(resolve: typeof dns.lookup = dns.lookup): Lookup {
    return (hostname, options, callback) => {
      resolve(hostname, { ...options, all: true }, (err, addresses) => {
        if (err !== null) {
          callback(err, []);
          return;
        }
        const list = addresses as LookupAddress[];
        const allowed: LookupAddress[] = [];
        let refusal: unknown;
        for (const entry of list) {
          try {
            this.checkAddress(entry.address, hostname);
            allowed.push(entry);
          } catch (e) {
            refusal ??= e;
          }
        }
        const first = allowed[0];
        if (first === undefined) {
          callback(
            (refusal as NodeJS.ErrnoException | undefined) ??
              new DrError('BROWSE_DNS', `${hostname} did not resolve to any address`),
            [],
          );
          return;
        }
        if (options.all === true) callback(null, allowed);
        else callback(null, first.address, first.family);
      });
    };
  }
}
