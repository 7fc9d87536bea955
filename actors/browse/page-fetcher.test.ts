import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractDocument } from './content-extract.ts';
import { PageFetcher, BROWSER_USER_AGENT } from './page-fetcher.ts';
import { ARTICLE_FACT, startTestSite, type TestSite } from './browse-test-site.ts';
import { UrlPolicy } from './url-safety.ts';

let site: TestSite;
let fetcher: PageFetcher;

beforeAll(async () => {
  site = await startTestSite();
  // Short enough for a quick suite, long enough that an event-loop stall on a loaded CI machine does not
  // time out a page the test site serves at once; the total is far above the read timeout.
  fetcher = new PageFetcher(new UrlPolicy({ allowCidrs: ['127.0.0.1/32'] }), {
    connectTimeoutMs: 2_000,
    readTimeoutMs: 1_000,
    totalTimeoutMs: 10_000,
    maxBytes: 256 * 1024,
    maxRedirects: 4,
  });
});

afterAll(async () => {
  fetcher.close();
  await site.close();
});

async function read(path: string) {
  return extractDocument(await fetcher.fetch(`${site.url}${path}`));
}

describe('fetching and extracting pages', () => {
  it('reduces an HTML article to its main content as markdown, without navigation, scripts or footer', async () => {
    const doc = await read('/article');

    expect(doc.format).toBe('html');
    expect(doc.title).toBe('The Zorblat Bridge');
    expect(doc.text).toContain(ARTICLE_FACT);
    expect(doc.text).not.toMatch(/About us|All rights reserved|do not read me|Advertisement/);
  });

  it('decompresses gzip bodies', async () => {
    expect((await read('/gzip')).text).toContain(ARTICLE_FACT);
  });

  it('reads the text of a PDF', async () => {
    const doc = await read('/report.pdf');

    expect(doc.format).toBe('pdf');
    expect(doc.text).toContain('41,000 vehicles per day');
  });

  it('reads plain text as is', async () => {
    const doc = await read('/notes.txt');

    expect(doc).toMatchObject({ format: 'text' });
    expect(doc.text).toContain(ARTICLE_FACT);
  });

  it('reports a broken PDF as BROWSE_BROKEN_CONTENT', async () => {
    await expect(read('/broken.pdf')).rejects.toMatchObject({ code: 'BROWSE_BROKEN_CONTENT' });
  });

  it.each(['/image.png', '/mystery'])('answers %s with BROWSE_UNSUPPORTED_CONTENT', async (path) => {
    await expect(read(path)).rejects.toMatchObject({ code: 'BROWSE_UNSUPPORTED_CONTENT' });
  });

  it('stops reading an oversized page while it streams', async () => {
    await expect(fetcher.fetch(`${site.url}/huge`)).rejects.toMatchObject({ code: 'BROWSE_TOO_LARGE' });
  });

  it('refuses an oversized page from its declared length', async () => {
    await expect(fetcher.fetch(`${site.url}/huge-declared`)).rejects.toMatchObject({
      code: 'BROWSE_TOO_LARGE',
    });
  });

  it('follows redirects, reporting the final URL', async () => {
    const page = await fetcher.fetch(`${site.url}/to-article`);

    expect(page.url).toBe(`${site.url}/article`);
    expect(page.redirects).toEqual([`${site.url}/article`]);
  });

  it('detects a redirect loop', async () => {
    await expect(fetcher.fetch(`${site.url}/loop-a`)).rejects.toMatchObject({ code: 'BROWSE_REDIRECT_LOOP' });
  });

  it('gives up after the redirect cap', async () => {
    await expect(fetcher.fetch(`${site.url}/hop`)).rejects.toMatchObject({
      code: 'BROWSE_TOO_MANY_REDIRECTS',
    });
    expect(site.hits.get('/hop')).toBe(5);
  });

  it('times out a server that never answers', async () => {
    const started = performance.now();

    await expect(fetcher.fetch(`${site.url}/hang`)).rejects.toMatchObject({ code: 'BROWSE_TIMEOUT' });
    // The read timeout (1 s) ends it, not the total (10 s); the rest is slack for a loaded CI machine.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('times out a body that stops arriving', async () => {
    await expect(fetcher.fetch(`${site.url}/drip`)).rejects.toMatchObject({ code: 'BROWSE_TIMEOUT' });
  });

  it('reports HTTP errors with their status', async () => {
    await expect(fetcher.fetch(`${site.url}/gone`)).rejects.toMatchObject({
      code: 'BROWSE_HTTP_STATUS',
      details: { status: 404 },
    });
  });

  it('sends a browser-like User-Agent', async () => {
    expect(BROWSER_USER_AGENT).toMatch(/^Mozilla\/5\.0 .*Chrome\/\d+/);
  });
});

describe('SSRF protection', () => {
  const strict = new PageFetcher(new UrlPolicy());
  afterAll(() => strict.close());

  it('refuses 127.0.0.1 without an allow-list, before connecting', async () => {
    const before = site.hits.get('/article') ?? 0;

    await expect(strict.fetch(`${site.url}/article`)).rejects.toMatchObject({
      code: 'BROWSE_BLOCKED_ADDRESS',
    });
    expect(site.hits.get('/article') ?? 0).toBe(before);
  });

  it('refuses a host name that resolves to loopback, at connect time', async () => {
    const port = new URL(site.url).port;

    await expect(strict.fetch(`http://localhost:${port}/article`)).rejects.toMatchObject({
      code: 'BROWSE_BLOCKED_ADDRESS',
    });
  });

  it('connects to an allow-listed host name', async () => {
    const byName = new PageFetcher(new UrlPolicy({ allowHosts: ['localhost'] }));
    const port = new URL(site.url).port;

    try {
      const page = await byName.fetch(`http://localhost:${port}/notes.txt`);
      expect(page.body.toString()).toContain(ARTICLE_FACT);
    } finally {
      byName.close();
    }
  });

  it('refuses the cloud metadata address', async () => {
    await expect(strict.fetch('http://169.254.169.254/latest/meta-data/')).rejects.toMatchObject({
      code: 'BROWSE_BLOCKED_ADDRESS',
    });
  });

  it('refuses file: URLs', async () => {
    await expect(strict.fetch('file:///etc/passwd')).rejects.toMatchObject({ code: 'BROWSE_BLOCKED_SCHEME' });
  });

  it('refuses a redirect to a private address even when the first hop was allowed', async () => {
    await expect(fetcher.fetch(`${site.url}/to-metadata`)).rejects.toMatchObject({
      code: 'BROWSE_BLOCKED_ADDRESS',
    });
  });

  it('refuses a redirect to a file: URL', async () => {
    await expect(fetcher.fetch(`${site.url}/to-file`)).rejects.toMatchObject({
      code: 'BROWSE_BLOCKED_SCHEME',
    });
  });
});
