/**
 * Splits a document into pages the reader sees one at a time (DeepResearcher's reader looks at a ~40 KB
 * viewport). Pages break at paragraph ends where possible, then at line ends, then at spaces, and only
 * mid-word for text with no breaks at all.
 */
export const DEFAULT_PAGE_CHARS = 40_000;

function cut(text: string, limit: number): number {
  const window = text.slice(0, limit + 1);
  for (const sep of ['\n\n', '\n', ' ']) {
    const at = window.lastIndexOf(sep);
    if (at > limit / 2) return at + sep.length;
  }
  return limit;
}

export function paginate(text: string, pageChars = DEFAULT_PAGE_CHARS): string[] {
  if (!(pageChars >= 100)) throw new RangeError(`pageChars must be at least 100, got ${pageChars}`);
  const pages: string[] = [];
  let rest = text.trim();
  while (rest.length > pageChars) {
    const at = cut(rest, pageChars);
    pages.push(rest.slice(0, at).trim());
    rest = rest.slice(at).trim();
  }
  if (rest !== '') pages.push(rest);
  return pages;
}
