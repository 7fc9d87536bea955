/**
 * What a trajectory needs from its tools: the text of a web_search or browse_webpage response. The actor
 * implementation asks the SearchActor/BrowseActor shards (actor-tools.ts); anything else that can answer
 * these two calls (a benchmark's latency model, a test's local web) plugs in the same way.
 */
export interface ToolContext {
  trajectoryId: string;
  question: string;
  /** Results per web_search query (the rollout's setting); default: the backend's. */
  searchTopK?: number;
  signal?: AbortSignal;
  /** How many of a web_search call's queries the search cache answered, for the trajectory's tool stats. */
  reportCached?: (queries: number) => void;
}

export interface ToolRunner {
  webSearch(queries: string[], ctx: ToolContext): Promise<string>;
  browse(urls: string[], ctx: ToolContext): Promise<string>;
}
