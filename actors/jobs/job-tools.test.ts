import { describe, expect, it } from 'vitest';
import { DrError } from '../../config/errors.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import type { ToolServices } from '../services/services.ts';
import { checkTools, resolveEngine, resolvePolicy, toolFailure } from './job-tools.ts';

const SERVED = { kind: 'served', actor: 'policy/embedded', model: 'embedded' } as const;
const ENDPOINT = { kind: 'chat', baseURL: 'http://127.0.0.1:1/v1', model: 'm' } as const;

const services = (over: Partial<ToolServices> = {}): ToolServices => ({
  search: { shards: 2, topK: 5 },
  browse: { shards: 1 },
  policies: { embedded: SERVED },
  ...over,
});

/** A directory holding exactly `names`, failing like the runtime's for the rest. */
const directory =
  (...names: string[]) =>
  async (name: string): Promise<unknown> => {
    if (names.includes(name)) return { name };
    throw new DrError('ACTOR_NOT_FOUND', `no actor named '${name}'`);
  };

describe('a job policy', () => {
  it('is the named one from the cluster file', () => {
    expect(resolvePolicy({ name: 'embedded' }, services())).toEqual(SERVED);
  });

  it('is the only one the cluster declares when the job names none', () => {
    expect(resolvePolicy(undefined, services())).toEqual(SERVED);
  });

  it('is the endpoint the job gives, whatever the cluster declares', () => {
    expect(resolvePolicy(ENDPOINT, services())).toEqual(ENDPOINT);
  });

  it('must be named when the cluster declares several', () => {
    const two = services({ policies: { a: SERVED, b: ENDPOINT } });
    expect(() => resolvePolicy(undefined, two)).toThrow(
      expect.objectContaining({ code: 'JOB_POLICY_REQUIRED', message: expect.stringContaining('a, b') }),
    );
  });

  it('is refused by an unknown name, listing the known ones', () => {
    expect(() => resolvePolicy({ name: 'qwen' }, services())).toThrow(
      expect.objectContaining({ code: 'JOB_POLICY_UNKNOWN', message: expect.stringContaining('embedded') }),
    );
  });
});

describe('a train job engine', () => {
  const engine = {
    policy: { kind: 'completions' as const, baseURL: 'http://gpu1:30000/v1', model: 'qwen' },
    weightSync: { kind: 'sglang' as const, dir: '/shared/w' },
  };

  it('is the cluster policy with weightSync that rollout.engine names, or none', () => {
    expect(resolveEngine('sglang', { policies: {}, engines: { sglang: engine } })).toBe(engine);
    expect(resolveEngine(undefined, undefined)).toBeUndefined();
  });

  it('is refused by a name the cluster file does not declare as an engine, saying what to add', () => {
    expect(() => resolveEngine('vllm', { policies: {}, engines: { sglang: engine } })).toThrow(
      expect.objectContaining({
        code: 'JOB_ENGINE_UNKNOWN',
        message: expect.stringMatching(/engines: sglang.*policies\.vllm.*weightSync/),
      }),
    );
  });
});

describe('checking a job’s tools', () => {
  it('passes when every shard and the served policy are running', async () => {
    const resolve = directory('search/0', 'search/1', 'browse/0', 'policy/embedded');
    await expect(checkTools(resolve, services(), SERVED)).resolves.toBeUndefined();
  });

  it('names the missing service and the config key to add on a cluster without one', async () => {
    await expect(checkTools(directory('browse/0'), { policies: {} }, ENDPOINT)).rejects.toMatchObject({
      code: 'JOB_TOOLS_UNAVAILABLE',
      message: expect.stringContaining('`search:` section'),
      details: { missing: ['search/0'], configKeys: ['search'] },
    });
  });

  it('says to wait when a declared shard is not running yet', async () => {
    const resolve = directory('search/0', 'browse/0');
    await expect(checkTools(resolve, services(), ENDPOINT)).rejects.toMatchObject({
      code: 'JOB_TOOLS_UNAVAILABLE',
      message: expect.stringMatching(/declared but search\/1 not running yet.*wait/),
    });
  });

  it('refuses a served policy that is not running', async () => {
    const resolve = directory('search/0', 'search/1', 'browse/0');
    await expect(checkTools(resolve, services(), SERVED)).rejects.toMatchObject({
      code: 'JOB_POLICY_UNAVAILABLE',
    });
  });
});

function trajectory(tools: Array<{ ok: boolean; error?: string }>): Pick<Trajectory, 'turns'> {
  return {
    turns: tools.map((t, index) => ({
      index,
      generateMs: 1,
      finishReason: 'stop',
      weightVersion: 0,
      tool: { name: 'web_search', args: ['q'], ms: 1, ...t },
    })),
  };
}

describe('a job’s tool failures', () => {
  it('fail the job past the allowed rate, naming the commonest errors', () => {
    const ts = [
      trajectory([
        { ok: false, error: 'SEARCH_HTTP_ERROR' },
        { ok: false, error: 'SEARCH_HTTP_ERROR' },
      ]),
      trajectory([{ ok: false, error: 'BROWSE_TIMEOUT' }, { ok: true }]),
    ] as Trajectory[];

    const failure = toolFailure({ calls: 4, errors: 3 }, 0.5, ts);

    expect(failure).toMatchObject({ code: 'JOB_TOOL_ERRORS' });
    expect(failure?.message).toMatch(
      /^3 of 4 tool calls failed \(more than 50%\): SEARCH_HTTP_ERROR x2, BROWSE_TIMEOUT x1/,
    );
  });

  it('do not fail a job at or below the rate, nor one that made no calls', () => {
    expect(toolFailure({ calls: 4, errors: 2 }, 0.5, [])).toBeUndefined();
    expect(toolFailure({ calls: 0, errors: 0 }, 0, [])).toBeUndefined();
  });
});
