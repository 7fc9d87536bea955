import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseClusterFile } from '../../config/cluster-file.ts';
import type { ActorFactory, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { serviceSpecs, startServices, toolServices, type RunningServices } from './services.ts';

const FILE = parseClusterFile(
  {
    search: { backend: 'serper', baseUrl: 'http://127.0.0.1:9/', apiKeyEnv: 'K', shards: 2, topK: 5 },
    browse: { allowHosts: ['docs.internal'], placement: { rank: 1 } },
    policies: {
      embedded: { checkpoint: 'embedded', placement: { resource: 'gpu' } },
      qwen: {
        baseUrl: 'http://10.0.0.5:8000/v1',
        model: 'Qwen2.5-7B',
        api: 'completions',
        apiKeyEnv: 'Q',
        tokenizer: '/models/qwen2.5-7b',
        weightSync: { kind: 'sglang', dir: '/shared/weights' },
      },
    },
  },
  'test',
);

/** Stands in for a tool actor: the test is about which actors exist, not what they do. */
const idle: ActorFactory<never> = async () => ({ receive: async () => 'ok' });

describe('the cluster file’s services', () => {
  it('become one supervised actor per shard and per served policy, placed as the file says', () => {
    const specs = serviceSpecs(FILE, 'http://127.0.0.1:4000');

    expect(specs.map((s) => s.name)).toEqual([
      'search-cache',
      'search/0',
      'search/1',
      'browse/0',
      'policy/embedded',
    ]);
    // The cache lives on the head, which the cluster cannot lose; every other service moves on node loss.
    expect(specs[0]).toMatchObject({ kind: 'search-cache', placement: { kind: 'rank', rank: 0 } });
    expect(specs.slice(1).every((s) => s.respawnOnNodeLoss === true)).toBe(true);
    expect(specs[1]).toMatchObject({
      args: {
        shard: 0,
        backend: { kind: 'serper', baseUrl: 'http://127.0.0.1:9/', apiKeyEnv: 'K' },
        cacheActor: 'search-cache',
      },
      placement: { kind: 'spread' },
    });
    expect(specs[3]).toMatchObject({
      args: { allowHosts: ['docs.internal', '127.0.0.1'] },
      placement: { kind: 'rank', rank: 1 },
    });
    expect(specs[4]).toMatchObject({ placement: { kind: 'resource', resource: 'gpu' } });
  });

  it('give each shard a cache file of its own with `cacheOwner: shard`', () => {
    const specs = serviceSpecs({ ...FILE, search: { ...FILE.search!, cacheOwner: 'shard' } });
    expect(specs.map((s) => s.name)).not.toContain('search-cache');
    expect(specs[0]!.args).not.toHaveProperty('cacheActor');
  });

  it('tell jobs their shard counts, how to reach each named policy, and which ones train jobs may sync', () => {
    const qwen = {
      kind: 'completions',
      baseURL: 'http://10.0.0.5:8000/v1',
      model: 'Qwen2.5-7B',
      apiKeyEnv: 'Q',
      tokenizerDir: '/models/qwen2.5-7b',
    };
    expect(toolServices(FILE)).toEqual({
      search: { shards: 2, topK: 5 },
      browse: { shards: 1 },
      policies: { embedded: { kind: 'served', actor: 'policy/embedded', model: 'embedded' }, qwen },
      engines: { qwen: { policy: qwen, weightSync: { kind: 'sglang', dir: '/shared/weights' } } },
    });
  });

  describe('on a running head', () => {
    let system: ActorSystem;
    let services: RunningServices | undefined;
    afterEach(async () => {
      services?.stop();
      await system.stop();
    });

    it('are spawned, and spawned again when one stops for good', async () => {
      system = createActorSystem({
        kinds: new Map<string, ActorFactory<never>>([
          ['search', idle],
          ['browse', idle],
        ]),
      });
      const file = parseClusterFile(
        { search: { backend: 'searxng', baseUrl: 'http://127.0.0.1:9/' }, browse: {} },
        'test',
      );
      services = startServices(
        {
          spawn: (spec) => system.spawn(spec),
          ask: (target, msg, options) => system.ask(target, msg, options),
          actors: () => system.actors(),
          nodes: async () => ({ alive: 1, expected: 1 }),
        },
        file,
        { listenHost: '127.0.0.1', log: pino({ level: 'silent' }), joinWaitMs: 0, reconcileMs: 50 },
      );
      await services.started;
      const names = async () => (await system.actors()).map((a) => a.name).sort();
      expect(await names()).toEqual(['browse/0', 'search/0']);

      await system.stopActor('search/0');

      await expect.poll(names, { timeout: 5_000 }).toEqual(['browse/0', 'search/0']);
    });
  });
});
