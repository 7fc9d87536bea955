import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandboxServer, type SandboxServer } from './server.ts';
import { buildSite, type Site } from './site.ts';
import { generateWorld } from './world.ts';

const world = generateWorld({ seed: 31, size: 300 });
let site: Site;
let srv: SandboxServer;

beforeAll(async () => {
  site = await buildSite(world);
  srv = await startSandboxServer({ world, site, slowPageMs: 150, rateLimitedShare: 1 });
});
afterAll(async () => {
  await srv.close();
});

function serper(
  body: string,
  headers: Record<string, string> = { 'X-API-KEY': srv.apiKey },
): Promise<Response> {
  return fetch(srv.searchUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body,
  });
}

describe('Serper-compatible search endpoint', () => {
  it('answers 401 with a Serper-like body when the API key is missing or wrong', async () => {
    for (const headers of [{}, { 'X-API-KEY': 'not-the-key' }] as Array<Record<string, string>>) {
      const r = await serper(JSON.stringify({ q: 'anything' }), headers);
      expect(r.status).toBe(401);
      expect(await r.json()).toEqual({ message: 'Unauthorized.', statusCode: 401 });
    }
  });

  it('answers 400 on a body that is not JSON, and on a request without q', async () => {
    const bad = await serper('{"q": ');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ statusCode: 400 });
    const noQ = await serper(JSON.stringify({ num: 10 }));
    expect(noQ.status).toBe(400);
    expect(((await noQ.json()) as { message: string }).message).toMatch(/q/);
  });

  it('also answers GET /search?q=&apiKey=, and can refuse keys with 403 as google.serper.dev does', async () => {
    const get = await fetch(`${srv.searchUrl}?q=river&num=3&apiKey=${srv.apiKey}`);
    expect(get.status).toBe(200);
    expect(((await get.json()) as { organic: unknown[] }).organic).toHaveLength(3);
    const strict = await startSandboxServer({ world, site, unauthorizedStatus: 403 });
    try {
      const r = await fetch(strict.searchUrl, { method: 'POST', body: JSON.stringify({ q: 'river' }) });
      expect(r.status).toBe(403);
      expect(await r.json()).toEqual({ message: 'Unauthorized.', statusCode: 403 });
    } finally {
      await strict.close();
    }
  });

  it('refuses a body over 1 MiB with 413 and a wrong method with 405', async () => {
    const big = await serper(JSON.stringify({ q: 'x'.repeat(2 << 20) }));
    expect(big.status).toBe(413);
    const put = await fetch(srv.searchUrl, {
      method: 'PUT',
      headers: { 'X-API-KEY': srv.apiKey },
      body: '{}',
    });
    expect(put.status).toBe(405);
  });

  it('returns searchParameters, organic results with title/link/snippet/position, and credits', async () => {
    const person = world.entities.find((e) => e.type === 'person');
    if (person === undefined) throw new Error('no person');
    const r = await serper(JSON.stringify({ q: person.name, num: 5, gl: 'us', hl: 'en' }));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await r.json()) as {
      searchParameters: unknown;
      organic: Array<Record<string, unknown>>;
      credits: number;
    };
    expect(body.searchParameters).toEqual({
      q: person.name,
      gl: 'us',
      hl: 'en',
      type: 'search',
      num: 5,
      engine: 'google',
    });
    expect(body.organic.length).toBeGreaterThan(0);
    expect(body.organic.length).toBeLessThanOrEqual(5);
    body.organic.forEach((o, i) => {
      expect(Object.keys(o).sort()).toEqual(['link', 'position', 'snippet', 'title']);
      expect(o.position).toBe(i + 1);
      expect(String(o.link).startsWith(srv.url + '/')).toBe(true);
    });
    expect(body.credits).toBe(1);
  });

  it('ranks the entity main page first for the entity name (BM25)', async () => {
    const sample = world.entities.filter((_, i) => i % 7 === 0);
    for (const e of sample) {
      const r = await serper(JSON.stringify({ q: e.name }));
      const body = (await r.json()) as { organic: Array<{ link: string; title: string }> };
      expect(body.organic[0]?.link).toBe(`${srv.url}/wiki/${e.slug}`);
    }
  });

  it('cuts snippets around the query terms from the page lead', async () => {
    const city = world.entities.find((e) => e.type === 'city');
    if (city?.type !== 'city') throw new Error('no city');
    const r = await serper(JSON.stringify({ q: `${city.name} country` }));
    const top = ((await r.json()) as { organic: Array<{ snippet: string }> }).organic[0];
    expect(top?.snippet).toContain(`${city.name} is a city in`);
  });

  it('pages through results with page, and answers a batch (array body) with an array', async () => {
    const q = 'company founded';
    const p1 = (await (await serper(JSON.stringify({ q, num: 10 }))).json()) as {
      organic: Array<{ link: string; position: number }>;
    };
    const p2 = (await (await serper(JSON.stringify({ q, num: 10, page: 2 }))).json()) as {
      organic: Array<{ link: string; position: number }>;
    };
    expect(p2.organic[0]?.position).toBe(11);
    expect(p2.organic.map((o) => o.link)).not.toContain(p1.organic[0]?.link);
    const batch = (await (
      await serper(JSON.stringify([{ q: 'river' }, { q: 'university' }]))
    ).json()) as unknown[];
    expect(batch).toHaveLength(2);
  });
});

describe('Bing v7-shaped search endpoint', () => {
  it('requires Ocp-Apim-Subscription-Key and returns webPages.value with name/url/snippet', async () => {
    const e = world.entities[3];
    if (e === undefined) throw new Error('no entity');
    const denied = await fetch(`${srv.bingUrl}?q=x`);
    expect(denied.status).toBe(401);
    const r = await fetch(`${srv.bingUrl}?q=${encodeURIComponent(e.name)}&count=3`, {
      headers: { 'Ocp-Apim-Subscription-Key': srv.apiKey },
    });
    const body = (await r.json()) as {
      _type: string;
      webPages: { value: Array<{ name: string; url: string; snippet: string }> };
    };
    expect(body._type).toBe('SearchResponse');
    expect(body.webPages.value.length).toBeLessThanOrEqual(3);
    expect(body.webPages.value[0]?.url).toBe(`${srv.url}/wiki/${e.slug}`);
    const missing = await fetch(srv.bingUrl, { headers: { 'Ocp-Apim-Subscription-Key': srv.apiKey } });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ _type: 'ErrorResponse', errors: [{ parameter: 'q' }] });
  });
});

describe('pages', () => {
  const byBehaviour = (b: string) => [...site.pages.values()].find((p) => p.behaviour === b);

  it('serves main pages as HTML and unknown paths as 404', async () => {
    const e = world.entities[0];
    if (e === undefined) throw new Error('no entity');
    const ok = await fetch(`${srv.url}/wiki/${e.slug}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await ok.text()).toContain(e.name);
    expect((await fetch(`${srv.url}/wiki/No_Such_Page`)).status).toBe(404);
  });

  it('redirects a surname-first title to the person page with 301 and Location', async () => {
    const person = world.entities.find((e) => e.type === 'person');
    if (person === undefined) throw new Error('no person');
    const [given, surname] = person.name.split(' ');
    const r = await fetch(`${srv.url}/wiki/${surname},_${given}`, { redirect: 'manual' });
    expect(r.status).toBe(301);
    expect(r.headers.get('location')).toBe(`/wiki/${person.slug}`);
    const followed = await fetch(`${srv.url}/wiki/${surname},_${given}`);
    expect(followed.url).toBe(`${srv.url}/wiki/${person.slug}`);
    expect(await followed.text()).toContain(`<h1>${person.name}</h1>`);
  });

  it('answers hostile paths without serving anything outside the site', async () => {
    expect((await fetch(`${srv.url}/wiki/%E0%A4%A`)).status).toBe(400);
    expect((await fetch(`${srv.url}/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
    expect((await fetch(`${srv.url}/wiki/${'A'.repeat(4000)}`)).status).toBe(404);
  });

  it('serves PDFs as application/pdf', async () => {
    const pdf = [...site.pages.values()].find((p) => p.contentType === 'application/pdf');
    const r = await fetch(`${srv.url}${pdf?.path}`);
    expect(r.headers.get('content-type')).toBe('application/pdf');
    expect(
      Buffer.from(await r.arrayBuffer())
        .subarray(0, 5)
        .toString(),
    ).toBe('%PDF-');
  });

  it('gives broken pages their behaviour: 404, 500, wrong type, 429 with Retry-After, slow', async () => {
    expect((await fetch(`${srv.url}${byBehaviour('not-found')?.path}`)).status).toBe(404);
    expect((await fetch(`${srv.url}${byBehaviour('server-error')?.path}`)).status).toBe(500);
    expect((await fetch(`${srv.url}${byBehaviour('wrong-type')?.path}`)).headers.get('content-type')).toBe(
      'application/octet-stream',
    );
    const limited = await fetch(`${srv.url}${byBehaviour('rate-limited')?.path}`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    const t0 = performance.now();
    expect((await fetch(`${srv.url}${byBehaviour('slow')?.path}`)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });
});

describe('binding', () => {
  it('advertises an address of this machine that other hosts can reach when bound to 0.0.0.0', async () => {
    const wide = await startSandboxServer({ world, site, host: '0.0.0.0' });
    try {
      const host = new URL(wide.url).hostname;
      const external = Object.values(networkInterfaces())
        .flatMap((a) => a ?? [])
        .filter((a) => a.family === 'IPv4' && !a.internal)
        .map((a) => a.address);
      expect(external.length === 0 ? host === '127.0.0.1' : external.includes(host)).toBe(true);
      expect((await fetch(`${wide.url}/`)).status).toBe(200);
    } finally {
      await wide.close();
    }
  });
});

describe('counters', () => {
  it('counts requests by route and responses by status, also over HTTP', async () => {
    srv.resetStats();
    await serper(JSON.stringify({ q: 'river' }));
    await fetch(`${srv.url}/wiki/No_Such_Page`);
    const s = srv.stats();
    expect(s.requests).toBe(2);
    expect(s.byRoute.serper).toBe(1);
    expect(s.byRoute.other).toBe(1);
    expect(s.statuses).toEqual({ 200: 1, 404: 1 });
    const overHttp = (await (await fetch(`${srv.url}/_sandbox/stats`)).json()) as { requests: number };
    expect(overHttp.requests).toBe(2);
  });
});
