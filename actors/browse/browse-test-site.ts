/**
 * A small web site on 127.0.0.1 for browse tests: an article with navigation and footer chrome, a long
 * article that needs paging, a PDF, plain text, gzip, an oversized page, binary data, redirect chains and
 * loops, a redirect to a private address, a page that never answers, and HTTP errors.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import zlib from 'node:zlib';
import PDFDocument from 'pdfkit';

export interface TestSite {
  readonly url: string;
  /** Requests per path. */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

export const ARTICLE_FACT = 'The Zorblat Bridge is 1,234 metres long and opened in 1987.';

const CHROME_NAV =
  '<nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/about">About us</a></nav>';
const CHROME_FOOTER =
  '<footer>Copyright 2024 Example Media. All rights reserved. Privacy policy. Cookie settings.</footer>';

function articleHtml(title: string, paragraphs: string[]): string {
  return `<!DOCTYPE html><html><head><title>${title}</title><script>var tracking = "do not read me";</script></head>
<body>${CHROME_NAV}<main><article><h1>${title}</h1>${paragraphs.map((p) => `<p>${p}</p>`).join('\n')}</article></main>
<aside>Advertisement: buy more widgets today</aside>${CHROME_FOOTER}</body></html>`;
}

const ARTICLE = articleHtml('The Zorblat Bridge', [
  `${ARTICLE_FACT} It crosses the river Quell between the towns of Amber and Lode, carrying four lanes of traffic.`,
  'Construction began in 1982 under the engineer Mira Tolvan, who also designed the nearby Quell Tower and several other landmarks in the region.',
  'The bridge was repainted in 2015 in its original red colour after a public vote, and it remains one of the most photographed sights of the valley.',
]);

function longArticle(): string {
  const filler = Array.from(
    { length: 60 },
    (_, i) =>
      `Section ${i + 1} describes the history of the valley in great detail, with long digressions about farming, weather and local customs that matter little.`,
  );
  filler[45] = 'Deep in the archive: the Zorblat Bridge toll was abolished in 2003 by the regional council.';
  return articleHtml('History of the Quell valley', filler);
}

async function pdfBytes(): Promise<Buffer> {
  const doc = new PDFDocument({ info: { CreationDate: new Date(0) } });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve) => doc.on('end', () => resolve()));
  doc.fontSize(14).text('Annual report of the Quell Bridge Authority.');
  doc.text('In 2023 the Zorblat Bridge carried 41,000 vehicles per day on average.');
  doc.end();
  await done;
  return Buffer.concat(chunks);
}

export async function startTestSite(): Promise<TestSite> {
  const pdf = await pdfBytes();
  const hits = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const html = (body: string) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(body);
    };
    switch (path) {
      case '/article':
        return html(ARTICLE);
      case '/long':
        return html(longArticle());
      case '/gzip':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
        return res.end(zlib.gzipSync(ARTICLE));
      case '/report.pdf':
        res.writeHead(200, { 'content-type': 'application/pdf' });
        return res.end(pdf);
      case '/broken.pdf':
        res.writeHead(200, { 'content-type': 'application/pdf' });
        return res.end(Buffer.concat([pdf.subarray(0, 200), Buffer.from('garbage')]));
      case '/notes.txt':
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end(`Field notes.\n\n${ARTICLE_FACT}\n`);
      case '/huge':
        res.writeHead(200, { 'content-type': 'text/html' });
        // No content-length: the cap must hold while streaming.
        for (let i = 0; i < 64; i++) res.write(`<p>${'x'.repeat(16 * 1024)}</p>`);
        return res.end();
      case '/huge-declared':
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(50 * 1024 * 1024) });
        return res.write('<p>start</p>');
      case '/image.png':
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]));
      case '/mystery':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return res.end(Buffer.from([1, 2, 3, 0, 0, 0, 7, 8, 9]));
      case '/loop-a':
        res.writeHead(302, { location: '/loop-b' });
        return res.end();
      case '/loop-b':
        res.writeHead(302, { location: '/loop-a' });
        return res.end();
      case '/hop': {
        const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? '0');
        res.writeHead(301, { location: `/hop?n=${n + 1}` });
        return res.end();
      }
      case '/to-article':
        res.writeHead(307, { location: '/article' });
        return res.end();
      case '/to-metadata':
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
        return res.end();
      case '/to-file':
        res.writeHead(302, { location: 'file:///etc/passwd' });
        return res.end();
      case '/hang':
        return; // never answers
      case '/drip':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.write('<p>first bytes, then silence</p>');
      case '/gone':
        res.writeHead(404, { 'content-type': 'text/html' });
        return res.end('<h1>Not found</h1>');
      default:
        res.writeHead(404);
        return res.end();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
