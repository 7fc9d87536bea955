import { randomBytes } from 'node:crypto';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeEnvelope, Kind, PROTOCOL_VERSION, type Envelope } from './wire.ts';

const tell: Envelope = {
  kind: Kind.TELL,
  from: 2,
  target: 'search/0',
  cid: 0,
  payload: { q: 'x', n: [1, 2] },
};
const ask: Envelope = { kind: Kind.ASK, from: 1, target: 'b', cid: 42, payload: [{ op: 'get' }, 500] };

describe('wire frames', () => {
  it('round-trips a batch of envelopes sent back to back in one frame', () => {
    const frame = Buffer.concat([encodeEnvelope(tell), encodeEnvelope(ask)]);
    expect(decodeFrame(frame, 1 << 20)).toEqual({ envelopes: [tell, ask], dropped: [] });
  });

  it('drops an oversized frame without decoding it', () => {
    const frame = encodeEnvelope({ ...tell, payload: 'x'.repeat(2_000) });
    expect(decodeFrame(frame, 1_024)).toMatchObject({ envelopes: [], dropped: [{ reason: 'oversized' }] });
  });

  it('drops truncated msgpack as a decode failure', () => {
    const frame = encodeEnvelope({ ...tell, payload: 'y'.repeat(100) });
    expect(decodeFrame(frame.subarray(0, frame.length - 10), 1 << 20)).toMatchObject({
      envelopes: [],
      dropped: [{ reason: 'decode' }],
    });
  });

  it('drops envelopes of an unknown protocol version and malformed ones, keeping the valid ones', () => {
    const frame = Buffer.concat([
      pack([PROTOCOL_VERSION + 1, Kind.TELL, 1, 'a', 0, null]),
      pack({ not: 'an envelope' }),
      pack([PROTOCOL_VERSION, 9, 1, 'a', 0, null]),
      encodeEnvelope(tell),
    ]);
    const { envelopes, dropped } = decodeFrame(frame, 1 << 20);
    expect(envelopes).toEqual([tell]);
    expect(dropped.map((d) => d.reason)).toEqual(['version', 'malformed', 'malformed']);
  });

  it('never throws on random bytes', () => {
    for (let i = 0; i < 500; i++) {
      const { envelopes, dropped } = decodeFrame(randomBytes(1 + (i % 64)), 1 << 20);
      expect(envelopes.length + dropped.length).toBeGreaterThan(0);
    }
  });
});
