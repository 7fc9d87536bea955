/**
 * The text a browse_webpage tool call returns to the model: per URL, only the new relevant information the
 * reader extracted, or one line saying why the page gave nothing.
 */
import type { BrowseReply, PageOutcome } from './protocol.ts';

function formatOutcome(outcome: PageOutcome): string {
  const source =
    outcome.title === undefined || outcome.title === '' ? outcome.url : `${outcome.title} (${outcome.url})`;
  switch (outcome.status) {
    case 'ok':
      return outcome.information.trim() === ''
        ? `From ${source}:\n(no new relevant information on this page)`
        : `From ${source}:\n${outcome.information.trim()}`;
    case 'unsupported':
      return `From ${outcome.url}:\n(unsupported content: ${outcome.error?.message ?? 'this type of document cannot be read'})`;
    case 'refused':
      return `From ${outcome.url}:\n(not opened: ${outcome.error?.message ?? 'this URL is not allowed'})`;
    case 'failed':
      return `From ${outcome.url}:\n(could not be read: ${outcome.error?.message ?? 'the page failed to load'})`;
  }
}

export function formatBrowseResponse(reply: BrowseReply): string {
  if (reply.error !== undefined && reply.results.length === 0)
    return `(browse_webpage refused: ${reply.error.message})`;
  return reply.results.map(formatOutcome).join('\n\n');
}
