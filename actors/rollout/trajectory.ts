/**
 * The trajectory record and the builder that grows it turn by turn. The rendered conversation is kept as
 * segments: what the policy sampled (trained on, loss mask 1) and everything else, i.e. the prompt, the tool
 * responses and the template's glue between turns (observation masking: loss mask 0). Token ids come from
 * the policy for sampled text and from the encoder for the rest, so training sees exactly the sampled tokens.
 */
import type { WebExchange } from './web-tape.ts';
import { DrError } from '../../config/errors.ts';
import type { Message } from './prompt.ts';
import type { Generation, PromptRenderer, TextEncoder } from './policy.ts';
import type { Scores } from './reward.ts';

export type EndReason = 'answer' | 'max_turns' | 'malformed' | 'length' | 'error' | 'cancelled';

export interface ToolCallStat {
  name: string;
  /** Queries or URLs of the call. */
  args: string[];
  ms: number;
  ok: boolean;
  error?: string;
  /** web_search: queries the search cache answered. */
  cached?: number;
}

export interface TurnRecord {
  index: number;
  generateMs: number;
  /** Policy tokens of this turn, when known. */
  tokens?: number;
  finishReason: 'stop' | 'length';
  weightVersion: number;
  tool?: ToolCallStat;
}

export interface ToolStats {
  searchCalls: number;
  browseCalls: number;
  queries: number;
  /** Queries the search cache answered (absent in trajectories from before it was counted). */
  cachedQueries?: number;
  urls: number;
  failures: number;
  /** Calls refused at the job's budget (they did not run, and are neither calls nor failures). */
  refused: number;
  toolMs: number;
}

/** Tool calls of some trajectories, how many failed, and how many search queries the cache answered. */
export interface ToolCounts {
  calls: number;
  errors: number;
  /** web_search queries, and those the search cache answered (its hit rate is their ratio). */
  queries?: number;
  cachedQueries?: number;
}

export function toolCounts(trajectories: Iterable<Pick<Trajectory, 'toolStats'>>): ToolCounts {
  let counts: ToolCounts = { calls: 0, errors: 0, queries: 0, cachedQueries: 0 };
  for (const t of trajectories) {
    counts = addToolCounts(counts, {
      calls: t.toolStats.searchCalls + t.toolStats.browseCalls,
      errors: t.toolStats.failures,
      queries: t.toolStats.queries,
      cachedQueries: t.toolStats.cachedQueries ?? 0,
    });
  }
  return counts;
}

export function addToolCounts(a: ToolCounts, b: ToolCounts): ToolCounts {
  return {
    calls: a.calls + b.calls,
    errors: a.errors + b.errors,
    queries: (a.queries ?? 0) + (b.queries ?? 0),
    cachedQueries: (a.cachedQueries ?? 0) + (b.cachedQueries ?? 0),
  };
}

/** "3 of 8 search queries from the cache (38%)", or null before any query. */
export function describeCacheHits(counts: ToolCounts): string | null {
  const q = counts.queries ?? 0;
  if (q === 0) return null;
  const hits = counts.cachedQueries ?? 0;
  return `${hits} of ${q} search queries from the cache (${Math.round((100 * hits) / q)}%)`;
}

/** More than `maxRate` of the calls failed (a job on a broken tool service, not a policy's bad call). */
export function toolErrorRateExceeded(counts: ToolCounts, maxRate: number): boolean {
  return counts.calls > 0 && counts.errors / counts.calls > maxRate;
}

export interface Trajectory {
  /** `{questionId}#{sample}`; also keys the trajectory's browse memory. */
  id: string;
  questionId: string;
  sample: number;
  question: string;
  groundTruth?: string;
  dataSource?: string;
  messages: Message[];
  /** The whole conversation as the model sees it. */
  renderedText: string;
  /** Everything after the initial prompt: the reward's `solution_str`. */
  responseText: string;
  /** Present when every segment has token ids (a `tokens` policy or an encoder). */
  tokenIds?: number[];
  /** Per token: the sampling logprob for policy tokens, null elsewhere. */
  logprobs?: Array<number | null>;
  /** Per token: 1 where the policy sampled it, 0 for prompt, tool responses and template glue. */
  lossMask?: number[];
  /** Tokens of the initial prompt (the first segment). */
  promptTokens?: number;
  /** Oldest weight version that sampled a turn of this trajectory. */
  weightVersion: number;
  turns: TurnRecord[];
  toolStats: ToolStats;
  /** The web calls and what they returned, in order: only in a job that records its web (web-tape.ts). */
  web?: WebExchange[];
  end: { reason: EndReason; detail?: string };
  answer?: string;
  scores?: Scores;
  startedAt: number;
  finishedAt: number;
}

interface Segment {
  text: string;
  trained: boolean;
  tokenIds?: number[];
  logprobs?: number[];
}

export class TrajectoryBuilder {
  readonly messages: Message[];
  private readonly segments: Segment[] = [];
  private rendered = '';

  constructor(
    initial: readonly Message[],
    private readonly renderer: PromptRenderer,
    private readonly encoder?: TextEncoder,
  ) {
    this.messages = [...initial];
    this.extendTo(this.renderer.render(this.messages, { addGenerationPrompt: true }));
  }

  /** The rendered prompt for the next turn (text, and token ids when every segment has them). */
  prompt(): { text: string; tokenIds?: number[] } {
    const ids = this.tokenIds();
    return ids === undefined ? { text: this.rendered } : { text: this.rendered, tokenIds: ids };
  }

  addGeneration(gen: Generation): void {
    this.messages.push({ role: 'assistant', content: gen.text });
    const segment: Segment = { text: gen.text, trained: true };
    if (gen.tokenIds !== undefined && gen.logprobs !== undefined) {
      segment.tokenIds = gen.tokenIds;
      segment.logprobs = gen.logprobs;
    } else if (this.encoder !== undefined) {
      segment.tokenIds = this.encoder.encode(gen.text);
    }
    this.segments.push(segment);
    this.rendered += gen.text;
  }

  addToolResponse(content: string): void {
    this.messages.push({ role: 'tool', content });
    this.extendTo(this.renderer.render(this.messages, { addGenerationPrompt: true }));
  }

  /** Closes the last assistant turn the way the template does (a trajectory cut off after a tool response
   * keeps its open generation prompt). */
  finish(): void {
    const last = this.messages[this.messages.length - 1];
    if (last?.role === 'assistant')
      this.extendTo(this.renderer.render(this.messages, { addGenerationPrompt: false }));
  }

  private extendTo(next: string): void {
    if (!next.startsWith(this.rendered)) {
      throw new DrError(
        'ROLLOUT_TEMPLATE_NOT_PREFIX',
        'the chat template re-rendered earlier turns differently; use a template whose rendering only appends',
      );
    }
    const text = next.slice(this.rendered.length);
    if (text === '') return;
    const segment: Segment = { text, trained: false };
    if (this.encoder !== undefined) segment.tokenIds = this.encoder.encode(text);
    this.segments.push(segment);
    this.rendered = next;
  }

  private tokenIds(): number[] | undefined {
    if (!this.segments.every((s) => s.tokenIds !== undefined)) return undefined;
    return this.segments.flatMap((s) => s.tokenIds ?? []);
  }

  /** The record's text and token fields. */
  snapshot(): Pick<
    Trajectory,
    'renderedText' | 'responseText' | 'tokenIds' | 'logprobs' | 'lossMask' | 'promptTokens'
  > {
    const first = this.segments[0];
    const promptText = first?.text ?? '';
    const out: ReturnType<TrajectoryBuilder['snapshot']> = {
      renderedText: this.rendered,
      responseText: this.rendered.slice(promptText.length),
    };
    const ids = this.tokenIds();
    if (ids !== undefined) {
      out.tokenIds = ids;
      out.lossMask = this.segments.flatMap((s) => (s.tokenIds ?? []).map(() => (s.trained ? 1 : 0)));
      out.logprobs = this.segments.flatMap((s) => (s.tokenIds ?? []).map((_, i) => s.logprobs?.[i] ?? null));
      out.promptTokens = first?.tokenIds?.length ?? 0;
    }
    return out;
  }
}
