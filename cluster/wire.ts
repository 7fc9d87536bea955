/**
 * The wire format between nodes: one WebSocket binary frame carries one or more msgpack-encoded envelopes
 * back to back (a sender batches what one callback and its promise jobs send). An envelope is the array
 * `[version, kind, from, target, cid, payload]`. Decoding validates every field: a frame that does not decode,
 * is oversized, or has an unknown version or a malformed envelope is dropped with a reason, never thrown.
 */
import { Packr, Unpackr } from 'msgpackr';

export const PROTOCOL_VERSION = 1;

/** What an envelope is. Asks carry a correlation id (`cid`) that the reply (REPLY or FAIL) echoes. */
export const Kind = {
  TELL: 0,
  ASK: 1,
  REPLY: 2,
  FAIL: 3,
  /** Membership and link control (hello, welcome, refused, heartbeat, members, leave, shutdown). */
  CONTROL: 4,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface Envelope {
  kind: Kind;
  /** Sender's rank; clients have negative ids assigned by the head. */
  from: number;
  /** Actor name, or the control verb for CONTROL, or '' for replies. */
  target: string;
  cid: number;
  payload: unknown;
}

/** A failure as it crosses the wire (a DrError's code survives). */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export type DropReason = 'decode' | 'oversized' | 'version' | 'malformed';

export interface Decoded {
  envelopes: Envelope[];
  dropped: Array<{ reason: DropReason; detail: string }>;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false });

export function encodeEnvelope(e: Envelope): Buffer {
  return packr.pack([PROTOCOL_VERSION, e.kind, e.from, e.target, e.cid, e.payload]);
}

export function decodeFrame(frame: Buffer, maxFrameBytes: number): Decoded {
  if (frame.length > maxFrameBytes) {
    return {
      envelopes: [],
      dropped: [{ reason: 'oversized', detail: `${frame.length} bytes > limit ${maxFrameBytes}` }],
    };
  }
  let values: unknown[];
  try {
    values = unpackr.unpackMultiple(frame) as unknown[];
  } catch (err) {
    return { envelopes: [], dropped: [{ reason: 'decode', detail: (err as Error).message }] };
  }
  const out: Decoded = { envelopes: [], dropped: [] };
  for (const v of values) {
    if (!Array.isArray(v) || v.length !== 6) {
      out.dropped.push({ reason: 'malformed', detail: 'not a 6-element envelope' });
      continue;
    }
    // Indexing, not destructuring: this runs for every envelope and an array iterator is garbage.
    const version: unknown = v[0];
    const kind: unknown = v[1];
    const from: unknown = v[2];
    const target: unknown = v[3];
    const cid: unknown = v[4];
    if (version !== PROTOCOL_VERSION) {
      out.dropped.push({
        reason: 'version',
        detail: `protocol version ${String(version)}, this node speaks ${PROTOCOL_VERSION}`,
      });
      continue;
    }
    if (
      typeof kind !== 'number' ||
      !Number.isInteger(kind) ||
      kind < Kind.TELL ||
      kind > Kind.CONTROL ||
      !Number.isSafeInteger(from) ||
      typeof target !== 'string' ||
      !Number.isSafeInteger(cid)
    ) {
      out.dropped.push({ reason: 'malformed', detail: 'bad kind, from, target or cid' });
      continue;
    }
    out.envelopes.push({
      kind: kind as Kind,
      from: from as number,
      target,
      cid: cid as number,
      payload: v[5],
    });
  }
  return out;
}
