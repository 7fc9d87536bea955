/**
 * Markup for sandbox pages: the document in an <article>, wrapped in the clutter a real page carries
 * (navigation, cookie banner, sidebar, trending box, ads, inline scripts, footer), so that content
 * extraction has real work to do.
 */
import type { Doc, DocLink } from './docs.ts';

export interface SiteStyle {
  /** Shown in the header and <title>. */
  name: string;
  /** Navigation entries (label, path). */
  nav: Array<[string, string]>;
}

export const ENCYCLOPEDIA: SiteStyle = {
  name: 'Worldpedia',
  nav: [
    ['Main page', '/'],
    ['Countries', '/wiki/List_of_countries'],
    ['Random article', '/wiki/Special_Random'],
    ['About', '/about'],
    ['Donate', '/donate'],
  ],
};
export const NEWS: SiteStyle = {
  name: 'The Daily Ledger',
  nav: [
    ['Home', '/'],
    ['World', '/news/world'],
    ['Business', '/news/business'],
    ['Culture', '/news/culture'],
    ['Subscribe', '/subscribe'],
  ],
};

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function linkList(links: DocLink[]): string {
  return links.map((l) => `<li><a href="${escapeHtml(l.path)}">${escapeHtml(l.title)}</a></li>`).join('');
}

/** Wraps article markup in the site's chrome. `trending` fills a sidebar box with unrelated links. */
export function layout(
  style: SiteStyle,
  title: string,
  article: string,
  related: DocLink[],
  trending: DocLink[],
): string {
  const nav = style.nav
    .map(([label, path]) => `<a class="nav-link" href="${path}">${escapeHtml(label)}</a>`)
    .join(' | ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - ${escapeHtml(style.name)}</title>
<link rel="stylesheet" href="/static/site.css">
<script>window.dataLayer=window.dataLayer||[];function track(){dataLayer.push(arguments)}track('js',Date.now());</script>
</head>
<body>
<div id="cookie-banner" class="consent" role="dialog">We use cookies to improve your experience and to show personalised advertising. <button>Accept all</button> <button>Manage preferences</button></div>
<header class="site-header"><a class="logo" href="/">${escapeHtml(style.name)}</a><nav class="main-nav">${nav}</nav>
<form class="search" action="/search-page"><input name="q" placeholder="Search ${escapeHtml(style.name)}"><button>Search</button></form></header>
<div class="layout">
<main id="content">
${article}
</main>
<aside class="sidebar">
<section class="related"><h3>Related articles</h3><ul>${linkList(related)}</ul></section>
<div class="ad-slot">Advertisement</div>
<section class="trending"><h3>Trending now</h3><ul>${linkList(trending)}</ul></section>
</aside>
</div>
<footer class="site-footer"><p>Text is available under an open licence; additional terms may apply.</p>
<p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a> | <a href="/contact">Contact</a></p>
<p>&copy; ${escapeHtml(style.name)}</p></footer>
<script>document.querySelectorAll('.consent button').forEach(function(b){b.onclick=function(){b.parentNode.remove()}});</script>
</body>
</html>
`;
}

/** An encyclopedia article: heading, infobox table, lead, sections. */
export function articleHtml(doc: Doc): string {
  const infobox =
    doc.infobox.length === 0
      ? ''
      : `<table class="infobox"><caption>${escapeHtml(doc.title)}</caption>${doc.infobox
          .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
          .join('')}</table>`;
  const lead = doc.lead.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n');
  const toc = doc.sections.map((s, i) => `<li><a href="#s${i}">${escapeHtml(s.heading)}</a></li>`).join('');
  const sections = doc.sections
    .map(
      (s, i) =>
        `<h2 id="s${i}">${escapeHtml(s.heading)}</h2>\n${s.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}`,
    )
    .join('\n');
  return `<article><h1>${escapeHtml(doc.title)}</h1>
<div class="byline">From Worldpedia, the free encyclopedia</div>
${infobox}
${lead}
<nav class="toc"><h2>Contents</h2><ol>${toc}</ol></nav>
${sections}
</article>`;
}

/** A news story: headline, dateline, paragraphs. */
export function newsHtml(headline: string, dateline: string, paragraphs: string[]): string {
  return `<article class="story"><h1>${escapeHtml(headline)}</h1>
<p class="dateline">${escapeHtml(dateline)}</p>
${paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
<div class="share">Share this story: <a href="#">Mail</a> <a href="#">Copy link</a></div>
</article>`;
}

/** A list article: intro and a table. */
export function listHtml(
  title: string,
  intro: string,
  header: string[],
  rows: Array<Array<{ text: string; path?: string }>>,
): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c) => `<td>${c.path === undefined ? escapeHtml(c.text) : `<a href="${escapeHtml(c.path)}">${escapeHtml(c.text)}</a>`}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<article><h1>${escapeHtml(title)}</h1><p>${escapeHtml(intro)}</p>
<table class="wikitable"><thead><tr>${th}</tr></thead><tbody>
${body}
</tbody></table></article>`;
}

export function notFoundHtml(path: string): string {
  return layout(
    ENCYCLOPEDIA,
    'Page not found',
    `<article><h1>Page not found</h1><p>There is no page at ${escapeHtml(path)}. It may have been moved or deleted.</p></article>`,
    [],
    [],
  );
}

export function serverErrorHtml(): string {
  return '<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1><p>The server encountered an unexpected condition.</p></body></html>';
}
