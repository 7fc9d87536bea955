/**
 * One DeepResearcher trajectory: prompt, then up to `maxTurns` rounds of generate -> parse -> answer or
 * tool call. A malformed turn ends it (the reward then scores -1); a failing tool call does not: its error
 * is the observation, as a broken web page would be.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import { parseTurn, type ToolCallRequest } from './parser.ts';
import { initialMessages, WEB_SEARCH } from './prompt.ts';
import { TURN_STOPS, type Policy, type PromptRenderer, type TextEncoder } from './policy.ts';
import { FORMAT_ERROR_SCORE, scoreSolution } from './reward.ts';
import { chatMlRenderer } from './chatml.ts';
import type { ToolRunner } from './tool-runner.ts';
import {
  TrajectoryBuilder,
  type EndReason,
  type ToolCallStat,
  type Trajectory,
  type TurnRecord,
} from './trajectory.ts';
import type { TurnBarrier } from './turn-barrier.ts';

export interface RolloutTask {
  questionId: string;
  question: string;
  groundTruth?: string;
  dataSource?: string;
}

export interface RolloutSettings {
  maxTurns: number;
  maxTokensPerTurn: number;
  temperature: number;
  topP: number;
  /** The date the system prompt states. */
  date: Date;
  /** Results per web_search query; default: the search backend's (10, as in DeepResearcher). */
  searchTopK?: number;
  /** The weight version the trainer synced the policy to for this batch: a turn's version when the backend
   * reports none. */
  weightVersion?: number;
}

export const DEFAULT_ROLLOUT_SETTINGS: Omit<RolloutSettings, 'date'> = {
  maxTurns: 10,
  maxTokensPerTurn: 2048,
  temperature: 1,
  topP: 1,
};

export interface TrajectoryDeps {
  policy: Policy;
  tools: ToolRunner;
  renderer?: PromptRenderer;
  encoder?: TextEncoder;
  /** Turn-synchronous schedule; absent: the trajectory advances on its own. */
  barrier?: TurnBarrier;
  /** A budgeted job's ledger: false refuses the call (it does not run, and the model is told so). */
  budget?: (tool: 'search' | 'browse') => Promise<boolean>;
  signal?: AbortSignal;
}

/** The tool response of a call refused at the job's budget: the model is to answer with what it has. */
function budgetSpent(tool: string): string {
  return `The job's budget for ${tool} is spent: this call did not run, and no further ${tool} call will. Answer from what you have found so far.`;
}

export function trajectoryId(questionId: string, sample: number): string {
  return `${questionId}#${sample}`;
}

async function runTool(call: ToolCallRequest, tools: ToolRunner, ctx: Parameters<ToolRunner['browse']>[1]) {
  const started = performance.now();
  const args = call.name === WEB_SEARCH ? call.arguments.query : call.arguments.url_list;
  const stat: ToolCallStat = { name: call.name, args, ms: 0, ok: true };
  const counted = { ...ctx, reportCached: (n: number) => (stat.cached = n) };
  let text: string;
  try {
    text =
      call.name === WEB_SEARCH
        ? await tools.webSearch(call.arguments.query, counted)
        : await tools.browse(call.arguments.url_list, counted);
  } catch (err) {
    if (ctx.signal?.aborted === true) throw err;
    stat.ok = false;
    stat.error = isDrError(err) ? err.code : String(err);
    text = `The ${call.name} call failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  stat.ms = performance.now() - started;
  return { text, stat };
}

export async function runTrajectory(
  task: RolloutTask,
  sample: number,
  settings: RolloutSettings,
  deps: TrajectoryDeps,
): Promise<Trajectory> {
  const id = trajectoryId(task.questionId, sample);
  const startedAt = Date.now();
  const builder = new TrajectoryBuilder(
    initialMessages(task.question, settings.date),
    deps.renderer ?? chatMlRenderer,
    deps.encoder,
  );
  const turns: TurnRecord[] = [];
  const toolStats = {
    searchCalls: 0,
    browseCalls: 0,
    queries: 0,
    cachedQueries: 0,
    urls: 0,
    failures: 0,
    refused: 0,
    toolMs: 0,
  };
  let end: { reason: EndReason; detail?: string } = { reason: 'max_turns' };
  let answer: string | undefined;

  try {
    for (let index = 0; index < settings.maxTurns; index += 1) {
      if (deps.signal?.aborted === true) throw new DrError('ROLLOUT_CANCELLED', 'the rollout was cancelled');
      await deps.barrier?.arrive();
      const t0 = performance.now();
      const gen = await deps.policy.generate(
        {
          messages: builder.messages,
          ...(deps.policy.mode === 'tokens' ? { prompt: builder.prompt() } : {}),
        },
        {
          maxTokens: settings.maxTokensPerTurn,
          temperature: settings.temperature,
          topP: settings.topP,
          stop: TURN_STOPS,
          ...(deps.signal === undefined ? {} : { signal: deps.signal }),
        },
      );
      const turn: TurnRecord = {
        index,
        generateMs: performance.now() - t0,
        finishReason: gen.finishReason,
        weightVersion: gen.weightVersion ?? settings.weightVersion ?? 0,
        ...(gen.tokenIds === undefined ? {} : { tokens: gen.tokenIds.length }),
      };
      turns.push(turn);
      builder.addGeneration(gen);
      const parsed = parseTurn(gen.text);
      if (parsed.kind === 'answer') {
        end = { reason: 'answer' };
        answer = parsed.answer;
        break;
      }
      if (parsed.kind === 'malformed') {
        end = { reason: gen.finishReason === 'length' ? 'length' : 'malformed', detail: parsed.reason };
        break;
      }
      await deps.barrier?.arrive();
      const tool = parsed.call.name === WEB_SEARCH ? 'search' : 'browse';
      if (deps.budget !== undefined && !(await deps.budget(tool))) {
        toolStats.refused += 1;
        builder.addToolResponse(budgetSpent(parsed.call.name));
        continue;
      }
      const { text, stat } = await runTool(parsed.call, deps.tools, {
        trajectoryId: id,
        question: task.question,
        ...(settings.searchTopK === undefined ? {} : { searchTopK: settings.searchTopK }),
        ...(deps.signal === undefined ? {} : { signal: deps.signal }),
      });
      turn.tool = stat;
      toolStats.toolMs += stat.ms;
      if (!stat.ok) toolStats.failures += 1;
      if (parsed.call.name === WEB_SEARCH) {
        toolStats.searchCalls += 1;
        toolStats.queries += stat.args.length;
        toolStats.cachedQueries += stat.cached ?? 0;
      } else {
        toolStats.browseCalls += 1;
        toolStats.urls += stat.args.length;
      }
      builder.addToolResponse(text);
    }
  } catch (err) {
    if (deps.signal?.aborted === true || isDrError(err, 'ROLLOUT_CANCELLED')) {
      end = { reason: 'cancelled' };
    } else {
      end = { reason: 'error', detail: isDrError(err) ? `${err.code}: ${err.message}` : String(err) };
    }
  } finally {
    deps.barrier?.leave();
  }
  builder.finish();
  const snapshot = builder.snapshot();
  const trajectory: Trajectory = {
    id,
    questionId: task.questionId,
    sample,
    question: task.question,
    ...(task.groundTruth === undefined ? {} : { groundTruth: task.groundTruth }),
    ...(task.dataSource === undefined ? {} : { dataSource: task.dataSource }),
    messages: builder.messages,
    ...snapshot,
    weightVersion: turns.length === 0 ? 0 : Math.min(...turns.map((t) => t.weightVersion)),
    turns,
    toolStats,
    end,
    ...(answer === undefined ? {} : { answer }),
    startedAt,
    finishedAt: Date.now(),
  };
  if (task.groundTruth !== undefined) {
    // A malformed turn is a format error even where the original's whole-string check would let it pass
    // (e.g. an answer without <think>).
    trajectory.scores =
      end.reason === 'malformed'
        ? { f1: FORMAT_ERROR_SCORE, em: FORMAT_ERROR_SCORE }
        : scoreSolution(snapshot.responseText, task.groundTruth);
  }
  return trajectory;
}
