import { describe, expect, it } from 'vitest';
import { formatSearchResponse } from './search-format.ts';

describe('formatSearchResponse', () => {
  it('numbers the hits of each query with title, URL and snippet, and reports failures per query', () => {
    const text = formatSearchResponse({
      v: 1,
      type: 'web_search.reply',
      results: [
        {
          query: 'capital of France',
          cached: true,
          hits: [
            {
              title: 'Paris - Wikipedia',
              url: 'https://en.wikipedia.org/wiki/Paris',
              snippet: 'Paris is the capital of France.',
            },
            { title: 'France', url: 'https://example.org/france', snippet: '' },
          ],
        },
        { query: 'nothing', cached: false, hits: [] },
        {
          query: 'broken',
          cached: false,
          hits: [],
          error: { code: 'SEARCH_CIRCUIT_OPEN', message: 'backend paused' },
        },
      ],
    });

    expect(text).toBe(
      [
        'Search results for "capital of France":',
        '[1] Paris - Wikipedia',
        'URL: https://en.wikipedia.org/wiki/Paris',
        'Paris is the capital of France.',
        '',
        '[2] France',
        'URL: https://example.org/france',
        '',
        'Search results for "nothing":',
        '(no results)',
        '',
        'Search results for "broken":',
        '(search failed: backend paused)',
      ].join('\n'),
    );
  });
});
