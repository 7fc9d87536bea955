/**
 * The trajectory's tools as calls to the tool actors: web_search split across the `search/<shard>` cache
 * shards, browse_webpage to the `browse/<shard>` actor that owns the trajectory's memory. Calls are plain
 * asks: the tool actors run with `maxConcurrency`, so one serves many trajectories at once, and an ask in
 * flight to a node that goes down fails at once with ACTOR_NODE_DOWN. The search query
 * that surfaced a URL travels with its browse as the sub-question the reading agent reads for. A request the
 * tool actor refuses as a whole, or a search whose every query failed, fails the tool call with the error's
 * code.
 */
import { DrError } from '../../config/errors.ts';
import type { ActorContext } from '../../runtime/actor.ts';
import { formatBrowseResponse } from '../browse/browse-format.ts';
import { browseActorFor } from '../browse/browse-routing.ts';
import { BROWSE_PROTOCOL_VERSION, browseRequest, type BrowseReply } from '../browse/protocol.ts';
import { formatSearchResponse } from '../search/search-format.ts';
import { askWebSearch } from '../search/search-routing.ts';
import { webSearchRequest, type WebSearchReply } from '../search/protocol.ts';
import type { ToolContext, ToolRunner } from './tool-runner.ts';

export interface ActorToolsOptions {
  searchShards: number;
  browseShards: number;
  timeoutMs: number;
}

function refused(reply: { error?: { code: string; message: string } }): void {
  if (reply.error !== undefined) throw new DrError(reply.error.code, reply.error.message);
}

export class ActorTools implements ToolRunner {
  /** trajectory id -> url -> the query whose results listed it */
  private readonly foundBy = new Map<string, Map<string, string>>();

  constructor(
    private readonly ctx: Pick<ActorContext, 'ask' | 'tell'>,
    private readonly options: ActorToolsOptions,
  ) {}

  private async call<R extends { error?: { code: string; message: string } }>(
    target: string,
    msg: object,
  ): Promise<R> {
    const reply = await this.ctx.ask<R>(target, msg, { timeoutMs: this.options.timeoutMs });
    refused(reply);
    return reply;
  }

  async webSearch(queries: string[], tc: ToolContext): Promise<string> {
    const reply = await askWebSearch(
      (name, msg) => this.call<WebSearchReply>(name, msg),
      webSearchRequest(queries, tc.searchTopK === undefined ? {} : { topK: tc.searchTopK }),
      this.options.searchShards,
    );
    // Every query failing is the tool failing (a bad key, a backend down), and is counted as such; a call with
    // some results is a working search that missed a query.
    const failed = reply.results.map((r) => r.error).filter((e) => e !== undefined);
    if (failed.length > 0 && failed.length === reply.results.length) {
      const first = failed[0] as { code: string; message: string };
      throw new DrError(first.code, first.message);
    }
    let urls = this.foundBy.get(tc.trajectoryId);
    if (urls === undefined) {
      urls = new Map();
      this.foundBy.set(tc.trajectoryId, urls);
    }
    for (const outcome of reply.results) {
      for (const hit of outcome.hits) if (!urls.has(hit.url)) urls.set(hit.url, outcome.query);
    }
    tc.reportCached?.(reply.results.filter((r) => r.cached).length);
    return formatSearchResponse(reply);
  }

  async browse(urls: string[], tc: ToolContext): Promise<string> {
    const subQuestion = urls
      .map((u) => this.foundBy.get(tc.trajectoryId)?.get(u))
      .find((q) => q !== undefined);
    const reply = await this.call<BrowseReply>(
      browseActorFor(tc.trajectoryId, this.options.browseShards),
      browseRequest(urls, tc.question, tc.trajectoryId, subQuestion),
    );
    return formatBrowseResponse(reply);
  }

  /** Drops what this trajectory left here and in its BrowseActor. */
  forget(trajectoryId: string): void {
    this.foundBy.delete(trajectoryId);
    try {
      this.ctx.tell(browseActorFor(trajectoryId, this.options.browseShards), {
        v: BROWSE_PROTOCOL_VERSION,
        type: 'browse.forget',
        trajectoryId,
      });
    } catch {
      // Forgetting is an optimisation: BrowseActors bound their memory and evict old trajectories anyway.
    }
  }
}
