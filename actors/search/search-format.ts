/**
 * The text a web_search tool call returns to the model. Numbered results per query, so the model can cite
 * and pick URLs to browse; a failed query says so in one line instead of failing the whole call.
 */
import type { QueryOutcome, WebSearchReply } from './protocol.ts';

function formatOutcome(outcome: QueryOutcome): string {
  const header = `Search results for "${outcome.query}":`;
  if (outcome.error !== undefined) return `${header}\n(search failed: ${outcome.error.message})`;
  if (outcome.hits.length === 0) return `${header}\n(no results)`;
  const lines = outcome.hits.map((hit, i) => {
    const snippet = hit.snippet === '' ? '' : `\n${hit.snippet}`;
    return `[${i + 1}] ${hit.title}\nURL: ${hit.url}${snippet}`;
  });
  return `${header}\n${lines.join('\n\n')}`;
}

export function formatSearchResponse(reply: WebSearchReply): string {
  if (reply.error !== undefined && reply.results.length === 0)
    return `(web_search refused: ${reply.error.message})`;
  return reply.results.map(formatOutcome).join('\n\n');
}
