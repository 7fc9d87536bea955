/**
 * Turns a fetched body into readable text: HTML reduced to its main content (Readability over a linkedom
 * DOM) and rendered as markdown (turndown), PDF text through unpdf, plain text as is. Everything else is
 * BROWSE_UNSUPPORTED_CONTENT. The media type the server claims is checked against the bytes, since pages
 * in the wild lie about it.
 */
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import TurndownService from 'turndown';
import { extractText } from 'unpdf';
import { DrError } from '../../config/errors.ts';
import type { FetchedPage } from './page-fetcher.ts';

export type DocumentFormat = 'html' | 'pdf' | 'text';

export interface ExtractedDocument {
  format: DocumentFormat;
  title: string;
  /** Markdown for HTML, plain text otherwise; whitespace tidied. */
  text: string;
}

const TEXT_TYPES = new Set([
  'text/plain',
  'text/markdown',
  'text/csv',
  'application/json',
  'application/xml',
  'text/xml',
]);
const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const SNIFF_TYPES = new Set(['', 'application/octet-stream', 'binary/octet-stream']);

const turndown = new TurndownService({
  headingStyle: 'atx',
  codeBlockStyle: 'fenced',
  bulletListMarker: '-',
});
// Link targets and images cost the reader tokens and carry no facts; keep the visible text only.
turndown.addRule('linkText', { filter: 'a', replacement: (content) => content });
turndown.remove(['img', 'script', 'style', 'noscript', 'iframe', 'form', 'button']);
turndown.remove((node) => node.nodeName.toLowerCase() === 'svg');

function sniff(body: Buffer): DocumentFormat | 'binary' {
  const head = body.subarray(0, 1024);
  if (head.subarray(0, 5).toString('latin1') === '%PDF-') return 'pdf';
  if (head.includes(0)) return 'binary';
  const start = head
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .trimStart()
    .slice(0, 100)
    .toLowerCase();
  if (
    start.startsWith('<!doctype html') ||
    start.startsWith('<html') ||
    start.startsWith('<head') ||
    start.startsWith('<body')
  )
    return 'html';
  return 'text';
}

function formatOf(page: FetchedPage): DocumentFormat | 'binary' | 'unsupported' {
  const type = page.mediaType;
  if (SNIFF_TYPES.has(type)) return sniff(page.body);
  if (type === 'application/pdf') return sniff(page.body) === 'pdf' ? 'pdf' : 'binary';
  if (HTML_TYPES.has(type)) return sniff(page.body) === 'binary' ? 'binary' : 'html';
  if (TEXT_TYPES.has(type) || type.startsWith('text/'))
    return sniff(page.body) === 'binary' ? 'binary' : 'text';
  return 'unsupported';
}

function decode(body: Buffer, charset: string | undefined): string {
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(body);
  } catch {
    return new TextDecoder('utf-8').decode(body);
  }
}

export function tidy(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Readability throws on some malformed documents; those get the fallback like any non-article page. */
function readArticle(document: Document): ReturnType<Readability<string>['parse']> {
  try {
    return new Readability(document, { keepClasses: false }).parse();
  } catch {
    return null;
  }
}

function htmlToDocument(html: string, url: string): ExtractedDocument {
  const { document } = parseHTML(html);
  const pageTitle = document.querySelector('title')?.textContent?.trim() ?? '';
  const article = readArticle(document as unknown as Document);
  if (article?.content != null && (article.textContent ?? '').trim() !== '') {
    return {
      format: 'html',
      title: (article.title ?? pageTitle).trim(),
      text: tidy(turndown.turndown(article.content)),
    };
  }
  // Readability found no article (lists, hubs, tiny pages): fall back to the body minus chrome.
  const { document: fresh } = parseHTML(html);
  for (const el of Array.from(
    fresh.querySelectorAll('script, style, noscript, nav, header, footer, aside, form'),
  ))
    el.remove();
  const body = fresh.querySelector('body')?.innerHTML ?? '';
  const text = tidy(turndown.turndown(body === '' ? ' ' : body));
  if (text === '')
    throw new DrError('BROWSE_EMPTY_PAGE', 'the page has no readable text', { details: { url } });
  return { format: 'html', title: pageTitle, text };
}

async function pdfToDocument(body: Buffer, url: string): Promise<ExtractedDocument> {
  let pages: string[];
  try {
    ({ text: pages } = await extractText(new Uint8Array(body), { mergePages: false }));
  } catch (err) {
    throw new DrError('BROWSE_BROKEN_CONTENT', `the PDF could not be read: ${(err as Error).message}`, {
      cause: err,
      details: { url },
    });
  }
  const text = tidy(pages.join('\n\n'));
  if (text === '')
    throw new DrError('BROWSE_EMPTY_PAGE', 'the PDF has no extractable text (a scan?)', { details: { url } });
  return { format: 'pdf', title: '', text };
}

export async function extractDocument(page: FetchedPage): Promise<ExtractedDocument> {
  const format = formatOf(page);
  switch (format) {
    case 'html':
      return htmlToDocument(decode(page.body, page.charset), page.url);
    case 'pdf':
      return pdfToDocument(page.body, page.url);
    case 'text': {
      const text = tidy(decode(page.body, page.charset));
      if (text === '')
        throw new DrError('BROWSE_EMPTY_PAGE', 'the page is empty', { details: { url: page.url } });
      return { format: 'text', title: '', text };
    }
    case 'binary':
    case 'unsupported':
      throw new DrError(
        'BROWSE_UNSUPPORTED_CONTENT',
        `${page.mediaType === '' ? 'binary data' : page.mediaType} cannot be read; only HTML, PDF and plain text pages can`,
        { details: { url: page.url, mediaType: page.mediaType } },
      );
  }
}
