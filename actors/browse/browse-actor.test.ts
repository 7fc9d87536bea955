import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nodeMetrics } from '../../cluster/monitor/metrics-recorder.ts';
import type { MetricSample } from '../../cluster/monitor/protocol.ts';
import type { ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { browseActor } from './browse-actor.ts';
import { browseActorFor } from './browse-routing.ts';
import { ARTICLE_FACT, startTestSite, type TestSite } from './browse-test-site.ts';
import type { BrowseReply, BrowseStatsReply, ForgetTrajectoryReply } from './protocol.ts';
import { browseRequest } from './protocol.ts';

let site: TestSite;
let s: ActorSystem;

beforeAll(async () => {
  site = await startTestSite();
});

afterAll(async () => {
  await site.close();
});

afterEach(async () => {
  await s.stop();
});

async function start(
  shards: number,
  allowCidrs: string[] = ['127.0.0.1/32'],
  prefix = 'browse',
): Promise<void> {
  s = createActorSystem({ kinds: new Map([['browse', browseActor as never]]) });
  for (let i = 0; i < shards; i++)
    await s.spawn({ kind: 'browse', name: `${prefix}/${i}`, args: { allowCidrs } });
}

/** The latency histogram this process would ship to the head for one actor. */
function latencyOf(actor: string): Extract<MetricSample, { kind: 'histogram' }> | undefined {
  return nodeMetrics
    .snapshot()
    .samples.find(
      (m): m is Extract<MetricSample, { kind: 'histogram' }> =>
        m.kind === 'histogram' && m.name === 'dr_browse_latency_seconds' && m.labels.actor === actor,
    );
}

const Q = 'How long is the Zorblat Bridge?';

describe('BrowseActor', () => {
  it('browses for a trajectory at the shard that owns its memory, and forgets it on request', async () => {
    await start(4);
    const owner = browseActorFor('traj-7', 4);

    const first = await s.ask<BrowseReply>(owner, browseRequest([`${site.url}/article`], Q, 'traj-7'));
    const forgot = await s.ask<ForgetTrajectoryReply>(owner, {
      v: 1,
      type: 'browse.forget',
      trajectoryId: 'traj-7',
    });
    const afterForget = await s.ask<BrowseReply>(owner, browseRequest([`${site.url}/article`], Q, 'traj-7'));

    expect(first.results[0]?.information).toContain(ARTICLE_FACT);
    expect(forgot.forgotten).toBe(true);
    expect(afterForget.results[0]?.information).toContain(ARTICLE_FACT);
  });

  it('answers a browse while another one is still waiting on its page', async () => {
    await start(1);
    let hangSettled = false;
    // The hanging ask must still be pending when the article's answer comes: 3 s leave a loaded CI machine
    // room to fetch and read the article.
    const hanging = s
      .ask<BrowseReply>('browse/0', browseRequest([`${site.url}/hang`], Q, 'traj-a'), { timeoutMs: 3_000 })
      .finally(() => {
        hangSettled = true;
      });

    const article = await s.ask<BrowseReply>('browse/0', browseRequest([`${site.url}/article`], Q, 'traj-b'));

    expect(article.results[0]?.information).toContain(ARTICLE_FACT);
    expect(hangSettled).toBe(false);
    await expect(hanging).rejects.toMatchObject({ code: 'ACTOR_ASK_TIMEOUT' });
  });

  it('refuses loopback pages when the sandbox is not allow-listed', async () => {
    await start(1, []);

    const reply = await s.ask<BrowseReply>('browse/0', browseRequest([`${site.url}/article`], Q, 't'));

    expect(reply.results[0]).toMatchObject({ status: 'refused', error: { code: 'BROWSE_BLOCKED_ADDRESS' } });
  });

  it('answers a malformed call with BROWSE_BAD_REQUEST and keeps its trajectories’ memories', async () => {
    await start(1);
    await s.ask('browse/0', browseRequest([`${site.url}/article`], Q, 't'));

    const bad = await s.ask<BrowseReply>('browse/0', { v: 1, type: 'browse_webpage', urls: [], question: Q });
    const stats = await s.ask<BrowseStatsReply>('browse/0', { v: 1, type: 'browse.stats' });

    expect(bad.error?.code).toBe('BROWSE_BAD_REQUEST');
    expect(stats).toMatchObject({ trajectories: 1, fetches: 1 });
  });

  it('records one latency observation per page it browses, none for a refused URL', async () => {
    await start(1, ['127.0.0.1/32'], 'browse-timed');

    await s.ask<BrowseReply>(
      'browse-timed/0',
      browseRequest([`${site.url}/article`, 'file:///etc/passwd'], Q, 'traj-timed'),
    );

    const latency = latencyOf('browse-timed/0');
    expect(latency?.count).toBe(1);
    expect(latency?.sum).toBeGreaterThan(0);
    expect(latency?.counts.at(-1)).toBe(1);
  });

  it('fails to spawn with a malformed allow-list', async () => {
    s = createActorSystem({ kinds: new Map([['browse', browseActor as never]]) });

    await expect(
      s.spawn({ kind: 'browse', name: 'browse/0', args: { allowCidrs: ['not-a-cidr'] } }),
    ).rejects.toMatchObject({
      code: 'ACTOR_SPAWN_FAILED',
    });
  });
});
