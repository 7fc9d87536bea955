import { describe, expect, it } from 'vitest';
import { MetricsRecorder } from '../../cluster/monitor/metrics-recorder.ts';
import { startNodeReporting } from './node-reporting.ts';
import type { MonitorMessage } from './protocol.ts';

describe('startNodeReporting', () => {
  it("tells the monitor its rank's snapshot, with mailbox depths of the actors it hosts now", () => {
    const told: Array<{ target: string; msg: MonitorMessage }> = [];
    let hosted: Array<[string, number]> = [
      ['search/0', 3],
      ['browse/0', 1],
    ];
    const stop = startNodeReporting(
      { rank: 4, tell: (target, msg) => told.push({ target: String(target), msg: msg as MonitorMessage }) },
      { recorder: new MetricsRecorder(), intervalMs: 60_000, mailboxDepths: () => hosted },
    );
    hosted = [['browse/0', 7]];
    stop();
    const depths = told.map(({ target, msg }) => {
      expect(target).toBe('monitor');
      expect(msg).toMatchObject({ v: 1, type: 'metrics', rank: 4 });
      return msg.type === 'metrics'
        ? msg.batch.samples
            .filter((s) => s.name === 'dr_actor_mailbox_depth')
            .map((s) => [s.labels.actor, s.kind === 'gauge' ? s.value : NaN])
        : [];
    });
    expect(depths).toEqual([
      [
        ['search/0', 3],
        ['browse/0', 1],
      ],
      [['browse/0', 7]],
    ]);
  });
});
