import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startOpenAITestServer,
  type OpenAITestServer,
  type ScriptedRequest,
} from '../rollout/openai-test-server.ts';
import { BrowseService } from './browse-service.ts';
import { DocumentStore } from './document-store.ts';
import { ARTICLE_FACT, startTestSite, type TestSite } from './browse-test-site.ts';
import { LlmReader } from './llm-reader.ts';
import { PageFetcher } from './page-fetcher.ts';
import { browseRequest } from './protocol.ts';
import { UrlPolicy } from './url-safety.ts';

let site: TestSite;
let llm: OpenAITestServer | undefined;
const stores: DocumentStore[] = [];

beforeAll(async () => {
  site = await startTestSite();
});

afterAll(async () => {
  await site.close();
});

afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  await llm?.close();
  llm = undefined;
});

function service(options: { reader?: LlmReader; pageChars?: number } = {}): BrowseService {
  const documents = new DocumentStore({
    fetcher: new PageFetcher(new UrlPolicy({ allowCidrs: ['127.0.0.1/32'] }), {
      readTimeoutMs: 1_000,
      totalTimeoutMs: 3_000,
    }),
    ...(options.pageChars === undefined ? {} : { pageChars: options.pageChars }),
  });
  stores.push(documents);
  return new BrowseService({
    documents,
    ...(options.reader === undefined ? {} : { reader: options.reader }),
  });
}

type Script = (
  page: number,
  of: number,
  req: ScriptedRequest,
) => { info: string | string[]; next: boolean } | string;

async function readingModel(script: Script): Promise<LlmReader> {
  llm = await startOpenAITestServer({
    reply: (req) => {
      const user = req.messages?.find((m) => m.role === 'user')?.content ?? '';
      const [, page = '0', of = '0'] = user.match(/Page (\d+) of (\d+):/) ?? [];
      const out = script(Number(page), Number(of), req);
      return typeof out === 'string'
        ? out
        : JSON.stringify({ new_information: out.info, read_next_page: out.next });
    },
  });
  return new LlmReader({ baseUrl: `${llm.baseURL}`, model: 'reader-test', timeoutMs: 5_000 });
}

function userMessages(server: OpenAITestServer): string[] {
  return server.requests.map((r) => r.messages?.find((m) => m.role === 'user')?.content ?? '');
}

const QUESTION = 'How long is the Zorblat Bridge?';

describe('BrowseService with a reading model', () => {
  it('reads the next page when the model asks for it, showing it what it found so far', async () => {
    const reader = await readingModel((page) =>
      page === 1 ? { info: 'Fact from page one.', next: true } : { info: 'Fact from page two.', next: false },
    );
    const browse = service({ reader, pageChars: 2_000 });

    const reply = await browse.browse(
      browseRequest([`${site.url}/long`], QUESTION, 't1', 'Zorblat Bridge toll'),
    );

    expect(reply.results[0]).toMatchObject({
      status: 'ok',
      pagesRead: 2,
      information: 'Fact from page one.\nFact from page two.',
    });
    expect(reply.results[0]?.totalPages).toBeGreaterThan(2);
    const [first = '', second = ''] = userMessages(llm as OpenAITestServer);
    expect(first).toContain(QUESTION);
    expect(first).toContain('Zorblat Bridge toll');
    expect(first).toContain('(none yet)');
    expect(second).toMatch(/Page 2 of \d+:/);
    expect(second).toContain('- Fact from page one.');
  });

  it('stops after the first page when the model says the rest is not worth reading', async () => {
    const reader = await readingModel(() => ({ info: ARTICLE_FACT, next: false }));
    const browse = service({ reader, pageChars: 2_000 });

    const reply = await browse.browse(browseRequest([`${site.url}/long`], QUESTION, 't1'));

    expect(reply.results[0]).toMatchObject({ status: 'ok', pagesRead: 1, information: ARTICLE_FACT });
    expect(llm?.requests).toHaveLength(1);
  });

  it('returns only information the trajectory has not been given before', async () => {
    let round = 0;
    const reader = await readingModel(() => {
      round++;
      return round === 1
        ? { info: ['The bridge is 1,234 metres long.', 'It opened in 1987.'], next: false }
        : { info: ['the bridge is 1,234 metres long', 'It was designed by Mira Tolvan.'], next: false };
    });
    const browse = service({ reader });

    const first = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 'traj-A'));
    const again = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 'traj-A'));

    expect(first.results[0]?.information).toBe('The bridge is 1,234 metres long.\nIt opened in 1987.');
    expect(again.results[0]?.information).toBe('It was designed by Mira Tolvan.');
    expect(userMessages(llm as OpenAITestServer)[1]).toContain('- It opened in 1987.');
  });

  it('keeps each trajectory’s memory separate', async () => {
    const reader = await readingModel(() => ({ info: 'The bridge is 1,234 metres long.', next: false }));
    const browse = service({ reader });

    await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 'traj-A'));
    const other = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 'traj-B'));

    expect(other.results[0]?.information).toBe('The bridge is 1,234 metres long.');
    expect(site.hits.get('/article')).toBeGreaterThanOrEqual(1);
  });

  it('tells the model that page content is untrusted data and fences it', async () => {
    const reader = await readingModel(() => ({ info: '', next: false }));
    const browse = service({ reader });

    await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 't'));

    const req = (llm as OpenAITestServer).requests[0];
    const system = req?.messages?.find((m) => m.role === 'system')?.content ?? '';
    expect(system).toMatch(/untrusted/);
    expect(system).toMatch(/never follow them/);
    expect(userMessages(llm as OpenAITestServer)[0]).toMatch(/<page>\n[\s\S]*Zorblat[\s\S]*\n<\/page>$/);
  });

  it('accepts a verdict wrapped in a code fence with prose around it', async () => {
    const reader = await readingModel(
      () =>
        'Sure, here it is:\n```json\n{"new_information": ["Length: 1,234 m"], "read_next_page": "no"}\n```',
    );
    const browse = service({ reader });

    const reply = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 't'));

    expect(reply.results[0]).toMatchObject({ status: 'ok', information: 'Length: 1,234 m', pagesRead: 1 });
  });

  it('keeps at most the configured number of completions in flight', async () => {
    let active = 0;
    let peak = 0;
    llm = await startOpenAITestServer({
      reply: async () => {
        active++;
        peak = Math.max(peak, active);
        // Long enough that the pages, fetched together, reach the reader while a completion is in flight even
        // when a loaded machine spreads them out; the cap then shows as a peak of exactly 2.
        await new Promise((resolve) => setTimeout(resolve, 250));
        active--;
        return JSON.stringify({ new_information: '', read_next_page: false });
      },
    });
    const reader = new LlmReader({ baseUrl: llm.baseURL, model: 'reader-test', maxConcurrent: 2 });
    const browse = service({ reader });
    const urls = ['/article', '/notes.txt', '/gzip', '/long', '/report.pdf'].map((p) => `${site.url}${p}`);

    const reply = await browse.browse(browseRequest(urls, QUESTION, 't'));

    expect(reply.results.every((r) => r.status === 'ok')).toBe(true);
    expect(llm.requests).toHaveLength(5);
    expect(peak).toBe(2);
  });

  it('falls back to the extractive reader when the reading model keeps failing', async () => {
    const reader = await readingModel(() => ({ info: 'unused', next: false }));
    (llm as OpenAITestServer).failNext(500, 10);
    const browse = service({ reader });

    const reply = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 't'));

    expect(reply.results[0]?.status).toBe('ok');
    expect(reply.results[0]?.information).toContain(ARTICLE_FACT);
  });
});

describe('BrowseService without a reading model (extractive reader)', () => {
  it('returns the passages that best match the question and sub-question', async () => {
    const browse = service();

    const reply = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 't'));

    expect(reply.results[0]?.status).toBe('ok');
    expect(reply.results[0]?.information.split('\n')[0]).toContain(ARTICLE_FACT);
    expect(reply.results[0]?.information).not.toMatch(/All rights reserved|Advertisement/);
  });

  it('finds a fact deep in a long document that needs several pages', async () => {
    const browse = service({ pageChars: 2_000 });

    const reply = await browse.browse(
      browseRequest([`${site.url}/long`], 'When was the Zorblat Bridge toll abolished?', 't'),
    );

    expect(reply.results[0]?.information.split('\n')[0]).toContain('toll was abolished in 2003');
    expect(reply.results[0]?.totalPages).toBeGreaterThan(2);
  });

  it('does not return the same passage twice to one trajectory', async () => {
    const browse = service();

    const first = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 't'));
    const second = await browse.browse(browseRequest([`${site.url}/article`], QUESTION, 't'));

    const firstUnits = new Set(first.results[0]?.information.split('\n'));
    for (const unit of second.results[0]?.information.split('\n').filter((u) => u !== '') ?? []) {
      expect(firstUnits.has(unit)).toBe(false);
    }
    expect(first.results[0]?.information).toContain(ARTICLE_FACT);
    expect(second.results[0]?.information).not.toContain(ARTICLE_FACT);
  });
});

describe('BrowseService outcomes per URL', () => {
  it('reads several URLs concurrently and reports each one with its own status', async () => {
    const browse = service();

    const reply = await browse.browse(
      browseRequest(
        [
          `${site.url}/notes.txt`,
          `${site.url}/image.png`,
          'http://169.254.169.254/latest/meta-data/',
          `${site.url}/gone`,
          'file:///etc/passwd',
        ],
        QUESTION,
        't',
      ),
    );

    expect(reply.results.map((r) => [r.status, r.error?.code])).toEqual([
      ['ok', undefined],
      ['unsupported', 'BROWSE_UNSUPPORTED_CONTENT'],
      ['refused', 'BROWSE_BLOCKED_ADDRESS'],
      ['failed', 'BROWSE_HTTP_STATUS'],
      ['refused', 'BROWSE_BLOCKED_SCHEME'],
    ]);
    expect(browse.stats()).toMatchObject({ refused: 2, failed: 2 });
  });

  it('serves a page it has read before from the page cache', async () => {
    const browse = service();
    const before = site.hits.get('/report.pdf') ?? 0;

    await browse.browse(
      browseRequest([`${site.url}/report.pdf`], 'How many vehicles cross the bridge?', 'a'),
    );
    const reply = await browse.browse(
      browseRequest([`${site.url}/report.pdf`], 'How many vehicles cross the bridge?', 'b'),
    );

    expect(reply.results[0]?.information).toContain('41,000 vehicles per day');
    expect((site.hits.get('/report.pdf') ?? 0) - before).toBe(1);
    expect(browse.stats()).toMatchObject({ fetches: 1, pageCacheHits: 1 });
  });
});
