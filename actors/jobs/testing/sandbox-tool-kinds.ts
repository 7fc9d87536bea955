/**
 * `search` and `browse` actor kinds for the job manager's in-process tests: they speak the
 * SearchActor/BrowseActor protocols (v1) straight over the sandbox world's BM25 index and page texts, with no
 * HTTP, so a job's logic is tested fast; the cluster tests use the real tool actors over the sandbox server.
 * The world is seed 7, size 400 (the `sandbox:<split>:7:400` questions).
 */
import type { Actor, ActorFactory } from '../../../runtime/actor.ts';
import type { BrowseReply, BrowseRequest } from '../../browse/protocol.ts';
import { SearchIndex } from '../../sandbox/search-index.ts';
import { buildSite, type Site } from '../../sandbox/site.ts';
import { generateWorld } from '../../sandbox/world.ts';
import type { WebSearchReply, WebSearchRequest } from '../../search/protocol.ts';

export const SANDBOX_ORIGIN = 'http://sandbox.test';
let built: Promise<{ site: Site; index: SearchIndex }> | undefined;

function sandbox(): Promise<{ site: Site; index: SearchIndex }> {
  built ??= buildSite(generateWorld({ seed: 7, size: 400 })).then((site) => ({
    site,
    index: new SearchIndex(site.indexed),
  }));
  return built;
}

export const sandboxSearch: ActorFactory = async (): Promise<Actor> => {
  const { index } = await sandbox();
  return {
    receive: (msg) => {
      const req = msg as WebSearchRequest;
      const reply: WebSearchReply = {
        v: 1,
        type: 'web_search.reply',
        results: req.queries.map((query) => ({
          query,
          cached: false,
          hits: index
            .search(query, 10, 1)
            .hits.map((h) => ({ title: h.title, url: `${SANDBOX_ORIGIN}${h.path}`, snippet: h.snippet })),
        })),
      };
      return reply;
    },
  };
};

export const sandboxBrowse: ActorFactory = async (): Promise<Actor> => {
  const { site } = await sandbox();
  return {
    receive: (msg) => {
      const req = msg as BrowseRequest;
      if (req.type !== 'browse_webpage') return { v: 1, type: 'browse.forget.reply', forgotten: true };
      const reply: BrowseReply = {
        v: 1,
        type: 'browse_webpage.reply',
        results: req.urls.map((url) => {
          const page = site.pages.get(url.slice(SANDBOX_ORIGIN.length));
          return page === undefined
            ? {
                url,
                status: 'failed',
                information: '',
                pagesRead: 0,
                totalPages: 0,
                error: { code: 'BROWSE_HTTP', message: 'HTTP 404' },
              }
            : {
                url,
                status: 'ok',
                title: page.title,
                information: page.text.slice(0, 1500),
                pagesRead: 1,
                totalPages: 1,
              };
        }),
      };
      return reply;
    },
  };
};
