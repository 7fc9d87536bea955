import { createHash } from 'node:crypto';
import { extractText } from 'unpdf';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSite, type Site } from './site.ts';
import { generateWorld } from './world.ts';

const world = generateWorld({ seed: 21, size: 300 });
let site: Site;

beforeAll(async () => {
  site = await buildSite(world);
});

function digest(s: Site): string {
  const h = createHash('sha256');
  for (const [path, p] of s.pages)
    h.update(path).update(String(p.status)).update(p.contentType).update(p.body);
  return h.digest('hex');
}

describe('buildSite', () => {
  it('renders the same bytes for the same world', async () => {
    expect(digest(await buildSite(generateWorld({ seed: 21, size: 300 })))).toBe(digest(site));
  });

  it('gives every entity a healthy main page under /wiki/<slug>', () => {
    for (const e of world.entities) {
      const p = site.pages.get(`/wiki/${e.slug}`);
      expect(p?.behaviour).toBe('ok');
      expect(p?.status).toBe(200);
      expect(p?.body.toString()).toContain(`<h1>${e.name}</h1>`);
    }
  });

  it('mentions every entity on some secondary page (a list, news story or report)', () => {
    const secondary = [...site.pages.values()].filter((p) => p.kind !== 'entity' && p.kind !== 'redirect');
    for (const e of world.entities) expect(secondary.some((p) => p.text.includes(e.name))).toBe(true);
  });

  it('wraps articles in clutter: navigation, cookie banner, sidebar, footer, scripts', () => {
    const html = (site.pages.get(`/wiki/${world.entities[0]?.slug}`)?.body ?? Buffer.alloc(0)).toString();
    for (const marker of [
      '<nav class="main-nav">',
      'id="cookie-banner"',
      '<aside class="sidebar">',
      '<footer',
      '<script>',
    ]) {
      expect(html).toContain(marker);
    }
  });

  it('has long pages whose text exceeds 40 KB, for paging', () => {
    const long = [...site.pages.values()].filter((p) => p.text.length > 40_000);
    expect(long.length).toBeGreaterThan(5);
    expect(long.every((p) => p.kind === 'entity' && p.body.length > 40_000)).toBe(true);
  });

  it('serves valid PDF reports whose text is what the index holds', async () => {
    const pdfs = [...site.pages.values()].filter((p) => p.contentType === 'application/pdf');
    expect(pdfs.length).toBeGreaterThan(3);
    const first = pdfs[0];
    if (first === undefined) throw new Error('no pdf');
    expect(first.body.subarray(0, 5).toString()).toBe('%PDF-');
    const { text } = await extractText(new Uint8Array(first.body), { mergePages: true });
    expect(text.replace(/\s+/g, ' ')).toContain(first.title);
  });

  it('breaks some news stories in every way, and only news stories', () => {
    const broken = [...site.pages.values()].filter((p) => p.behaviour !== 'ok');
    expect(new Set(broken.map((p) => p.behaviour))).toEqual(
      new Set(['truncated', 'wrong-type', 'not-found', 'server-error', 'slow', 'rate-limited']),
    );
    expect(broken.every((p) => p.kind === 'news')).toBe(true);
    const truncated = broken.find((p) => p.behaviour === 'truncated');
    expect(truncated?.body.toString()).not.toContain('</html>');
    expect(broken.find((p) => p.behaviour === 'wrong-type')?.contentType).toBe('application/octet-stream');
    expect(broken.find((p) => p.behaviour === 'not-found')?.status).toBe(404);
    expect(broken.find((p) => p.behaviour === 'server-error')?.status).toBe(500);
  });
});
