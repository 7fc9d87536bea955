/**
 * The sandbox web through the project's own tool clients: the Serper and Bing search backends and the
 * browse pipeline (URL policy, fetcher, extraction, paging) must read it the way they read the real web.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractDocument } from '../browse/content-extract.ts';
import { PageFetcher } from '../browse/page-fetcher.ts';
import { paginate } from '../browse/paginate.ts';
import { UrlPolicy } from '../browse/url-safety.ts';
import { createSearchBackend } from '../search/search-backends.ts';
import { generateQuestions } from './questions.ts';
import { startSandboxServer, type SandboxServer } from './server.ts';
import { generateWorld } from './world.ts';

const world = generateWorld({ seed: 61, size: 300 });
const asked = generateQuestions(world);
let srv: SandboxServer;
let fetcher: PageFetcher;

beforeAll(async () => {
  srv = await startSandboxServer({ world, slowPageMs: 50 });
  fetcher = new PageFetcher(new UrlPolicy({ allowCidrs: ['127.0.0.1/32'] }));
});
afterAll(async () => {
  fetcher.close();
  await srv.close();
});

async function read(path: string): Promise<{ format: string; text: string }> {
  return extractDocument(await fetcher.fetch(srv.url + path));
}

describe('search backends against the sandbox', () => {
  it('the Serper backend finds the main page of a question subject with its answer in the snippet', async () => {
    const q = asked.find((x) => x.hops.length === 1 && !x.needsBrowse && x.template === 'person.birthCity');
    if (q === undefined) throw new Error('no such question');
    const serper = createSearchBackend({ kind: 'serper', baseUrl: srv.url, apiKey: srv.apiKey });
    const hits = await serper.search(q.question, { topK: 10 });
    expect(hits[0]?.url).toBe(srv.url + q.hops[0]?.path);
    expect(hits[0]?.snippet).toContain(q.answers[0]);
  });

  it('the Bing backend reads the v7-shaped endpoint', async () => {
    const e = world.entities[5];
    if (e === undefined) throw new Error('no entity');
    const bing = createSearchBackend({ kind: 'bing', baseUrl: srv.url, apiKey: srv.apiKey });
    const hits = await bing.search(e.name, { topK: 5 });
    expect(hits.length).toBeGreaterThan(0);
    expect(hits[0]?.url).toBe(`${srv.url}/wiki/${e.slug}`);
  });
});

describe('the browse pipeline against the sandbox', () => {
  it('extracts the article of a main page without its clutter', async () => {
    const e = world.entities.find((x) => x.type === 'city' && !x.long);
    if (e === undefined) throw new Error('no city');
    const doc = await read(`/wiki/${e.slug}`);
    expect(doc.format).toBe('html');
    expect(doc.text).toContain(`${e.name} is a city in`);
    expect(doc.text).not.toContain('We use cookies');
  });

  it('needs more than one 40 KB page to reach a deep fact of a long page', async () => {
    const q = asked.find((x) => x.hops.length === 1 && x.hops[0]?.placement === 'deep');
    const hop = q?.hops[0];
    if (hop === undefined) throw new Error('no deep question');
    const pages = paginate((await read(hop.path)).text);
    expect(pages.length).toBeGreaterThan(1);
    expect(pages[0]).not.toContain(hop.value);
    expect(pages.slice(1).some((p) => p.includes(hop.value))).toBe(true);
  });

  it('reads PDF reports, follows redirects, and sniffs HTML served with the wrong type', async () => {
    const pdf = [...srv.site.pages.values()].find((p) => p.contentType === 'application/pdf');
    expect((await read(pdf?.path ?? '')).text).toContain(pdf?.title.split(' ')[0]);
    const person = world.entities.find((x) => x.type === 'person');
    const [given, surname] = (person?.name ?? '').split(' ');
    const redirected = await fetcher.fetch(`${srv.url}/wiki/${surname},_${given}`);
    expect(redirected.redirects).toEqual([`${srv.url}/wiki/${person?.slug}`]);
    const mislabelled = [...srv.site.pages.values()].find((p) => p.behaviour === 'wrong-type');
    const doc = await read(mislabelled?.path ?? '');
    expect(doc.text).toContain(mislabelled?.summary.slice(0, 30));
  });

  it('gets a typed error for dead and failing pages', async () => {
    for (const behaviour of ['not-found', 'server-error']) {
      const page = [...srv.site.pages.values()].find((p) => p.behaviour === behaviour);
      await expect(fetcher.fetch(srv.url + (page?.path ?? ''))).rejects.toMatchObject({
        code: 'BROWSE_HTTP_STATUS',
      });
    }
  });
});
