/**
 * The sandbox web site: every page of a world, rendered once (HTML, PDF), with its search text and its
 * fixed behaviour (healthy, truncated, mislabelled, dead, failing, slow, rate-limited). The server only
 * looks pages up here, so a request never renders anything.
 *
 * Main entity pages are always healthy and hold every fact; secondary pages (news, lists, reports) repeat
 * lead facts only, and only news stories are broken, so no question depends on a broken page.
 */
import {
  backlinkIndex,
  docSummary,
  docText,
  entityDoc,
  entityPath,
  formatDate,
  type DocLink,
} from './docs.ts';
import {
  articleHtml,
  ENCYCLOPEDIA,
  escapeHtml,
  layout,
  listHtml,
  NEWS,
  newsHtml,
  notFoundHtml,
  serverErrorHtml,
} from './html.ts';
import { renderPdf } from './pdf.ts';
import { createRng, type Rng } from './rng.ts';
import {
  indexWorld,
  slugify,
  type City,
  type Company,
  type Country,
  type Entity,
  type Person,
  type World,
} from './world.ts';

export type PageBehaviour =
  'ok' | 'truncated' | 'wrong-type' | 'not-found' | 'server-error' | 'slow' | 'rate-limited';
export type PageKind = 'entity' | 'news' | 'list' | 'report' | 'home' | 'redirect';

export interface SitePage {
  path: string;
  kind: PageKind;
  title: string;
  /** What search snippets are cut from. */
  summary: string;
  /** All readable text (what the search index sees). */
  text: string;
  /** Subject entity of a main page. */
  entity: string | null;
  behaviour: PageBehaviour;
  /** Listed by the search endpoint (home and dead pages' siblings are not). */
  indexed: boolean;
  status: number;
  contentType: string;
  body: Buffer;
  /** Target of a redirect (sent as Location). */
  location?: string;
}

export interface Site {
  pages: Map<string, SitePage>;
  /** Indexed pages in a stable order (search document ids are positions here). */
  indexed: SitePage[];
}

/** Shares of news stories given each broken behaviour (at least one story each). */
export const BROKEN_SHARES: Record<Exclude<PageBehaviour, 'ok'>, number> = {
  truncated: 0.06,
  'wrong-type': 0.04,
  'not-found': 0.05,
  'server-error': 0.04,
  slow: 0.05,
  'rate-limited': 0.06,
};

const HTML = 'text/html; charset=utf-8';

interface Draft {
  path: string;
  kind: PageKind;
  title: string;
  summary: string;
  text: string;
  entity: string | null;
  html?: string;
  pdf?: { title: string; paragraphs: string[] };
}

function trendingLinks(rng: Rng, world: World): DocLink[] {
  return Array.from({ length: 5 }, () => {
    const e = rng.pick(world.entities);
    return { title: e.name, path: entityPath(e) };
  });
}

function entityDrafts(world: World, rng: Rng): Draft[] {
  const get = indexWorld(world);
  const back = backlinkIndex(world.entities);
  return world.entities.map((e) => {
    const doc = entityDoc(world.seed, e, get, back.get(e.id) ?? []);
    return {
      path: entityPath(e),
      kind: 'entity',
      title: e.name,
      summary: docSummary(doc),
      text: docText(doc),
      entity: e.id,
      html: layout(ENCYCLOPEDIA, e.name, articleHtml(doc), doc.links, trendingLinks(rng, world)),
    };
  });
}

/** A news story about one entity that repeats only its lead facts. */
function story(rng: Rng, e: Entity, get: (id: string) => Entity): { headline: string; lead: string } | null {
  switch (e.type) {
    case 'person': {
      const born = e.placement.birthCity === 'lead' ? `, who was born in ${get(e.birthCity).name},` : '';
      return {
        headline: `${e.name} honoured for a lifetime of work`,
        lead: `${e.name}, the ${e.occupation}${born} received a regional award at a ceremony this week.`,
      };
    }
    case 'company': {
      const hq = e.placement.hq === 'lead' ? ` based in ${get(e.hq).name}` : '';
      return {
        headline: `${e.name} expands ${e.industry} operations`,
        lead: `${e.name}, the ${e.industry} company${hq}, announced plans to expand its operations.`,
      };
    }
    case 'city':
      return {
        headline: `Festival season opens in ${e.name}`,
        lead: `${e.name}, a city in ${get(e.country).name}, opened its festival season with a parade.`,
      };
    case 'book': {
      const by = e.placement.author === 'lead' ? `, the ${e.genre} by ${get(e.author).name},` : '';
      return {
        headline: `New edition of ${e.name} announced`,
        lead: `${e.name}${by} will return to bookshops in a new edition.`,
      };
    }
    default:
      return null;
  }
}

const NEWS_FILLER = [
  'Organisers said attendance had exceeded expectations.',
  'Officials declined to give further details.',
  'The announcement was welcomed by local businesses.',
  'Further events are planned for the coming months.',
  'Critics said more information would be needed before judging the outcome.',
  'A spokesperson said the decision followed months of consultation.',
];

function newsDrafts(world: World, rng: Rng): Draft[] {
  const get = indexWorld(world);
  const subjects = world.entities.filter(
    (e) => e.type === 'person' || e.type === 'company' || e.type === 'city' || e.type === 'book',
  );
  const n = Math.max(12, Math.round(world.size * 0.3));
  const out: Draft[] = [];
  const seen = new Set<string>();
  for (let i = 0; out.length < n && i < n * 4; i++) {
    const e = rng.pick(subjects);
    const s = story(rng, e, get);
    if (s === null) continue;
    const year = rng.int(2015, 2024);
    const month = rng.int(1, 12);
    const path = `/news/${year}/${String(month).padStart(2, '0')}/${slugify(s.headline).toLowerCase().replace(/_/g, '-')}`;
    if (seen.has(path)) continue;
    seen.add(path);
    const paragraphs = [s.lead, ...rng.shuffle(NEWS_FILLER).slice(0, rng.int(3, 5))];
    const dateline = `${formatDate({ day: rng.int(1, 28), month, year })}`;
    out.push({
      path,
      kind: 'news',
      title: s.headline,
      summary: s.lead,
      text: [s.headline, ...paragraphs].join('\n\n'),
      entity: null,
      html: layout(
        NEWS,
        s.headline,
        newsHtml(s.headline, dateline, paragraphs),
        [{ title: e.name, path: entityPath(e) }],
        trendingLinks(rng, world),
      ),
    });
  }
  return out;
}

function listDraft(
  rng: Rng,
  world: World,
  title: string,
  intro: string,
  header: string[],
  rows: Array<Array<{ text: string; path?: string }>>,
): Draft {
  const rowText = rows.map((r) => r.map((c) => c.text).join(', '));
  return {
    path: `/wiki/${slugify(title)}`,
    kind: 'list',
    title,
    entity: null,
    summary: `${intro} ${rowText.slice(0, 3).join('; ')}.`,
    text: [title, intro, ...rowText].join('\n'),
    html: layout(ENCYCLOPEDIA, title, listHtml(title, intro, header, rows), [], trendingLinks(rng, world)),
  };
}

function listDrafts(world: World, rng: Rng): Draft[] {
  const get = indexWorld(world);
  const of = <T extends Entity['type']>(t: T) =>
    world.entities.filter((e): e is Extract<Entity, { type: T }> => e.type === t);
  const cell = (e: Entity) => ({ text: e.name, path: entityPath(e) });
  const out: Draft[] = [];
  const countries = of('country');
  out.push(
    listDraft(
      rng,
      world,
      'List of countries',
      'This is a list of sovereign states with their continent.',
      ['Country', 'Continent'],
      countries.map((c: Country) => [cell(c), { text: c.continent }]),
    ),
  );
  for (const c of countries) {
    const cities = of('city').filter((x: City) => x.country === c.id);
    out.push(
      listDraft(
        rng,
        world,
        `List of cities in ${c.name}`,
        `Cities and towns of ${c.name}, by population.`,
        ['City', 'Population'],
        cities.map((x) => [cell(x), { text: x.population.toLocaleString('en-US') }]),
      ),
    );
  }
  const people = of('person');
  for (const occupation of [...new Set(people.map((p: Person) => p.occupation))].sort()) {
    out.push(
      listDraft(
        rng,
        world,
        `List of ${occupation}s`,
        `A list of notable ${occupation}s.`,
        ['Name', 'Occupation'],
        people.filter((p) => p.occupation === occupation).map((p) => [cell(p), { text: occupation }]),
      ),
    );
  }
  const companies = of('company');
  for (const industry of [...new Set(companies.map((c: Company) => c.industry))].sort()) {
    out.push(
      listDraft(
        rng,
        world,
        `List of ${industry} companies`,
        `Companies active in ${industry}.`,
        ['Company', 'Headquarters'],
        companies
          .filter((c) => c.industry === industry)
          .map((c) => [cell(c), c.placement.hq === 'lead' ? cell(get(c.hq)) : { text: '—' }]),
      ),
    );
  }
  out.push(
    listDraft(
      rng,
      world,
      'List of rivers',
      'Rivers by length, with the country where they rise where it is recorded.',
      ['River', 'Length (km)', 'Source'],
      of('river')
        .slice()
        .sort((a, b) => b.lengthKm - a.lengthKm)
        .map((r) => [
          cell(r),
          { text: String(r.lengthKm) },
          r.placement.source === 'lead' ? cell(get(r.source)) : { text: '—' },
        ]),
    ),
    listDraft(
      rng,
      world,
      'List of universities',
      'Universities and colleges with the city where they are located.',
      ['University', 'City'],
      of('university').map((u) => [cell(u), cell(get(u.city))]),
    ),
  );
  const books = of('book');
  for (const genre of [...new Set(books.map((b) => b.genre))].sort()) {
    out.push(
      listDraft(
        rng,
        world,
        `Books by genre: ${genre}`,
        `Notable works classed as ${genre}.`,
        ['Title', 'Author'],
        books
          .filter((b) => b.genre === genre)
          .map((b) => [cell(b), b.placement.author === 'lead' ? cell(get(b.author)) : { text: '—' }]),
      ),
    );
  }
  return out;
}

function reportDrafts(world: World, rng: Rng): Draft[] {
  const get = indexWorld(world);
  const out: Draft[] = [];
  for (const e of world.entities) {
    let paragraphs: string[];
    let title: string;
    if (e.type === 'company' && rng.chance(0.3)) {
      title = `${e.name} Annual Report`;
      paragraphs = [
        `${e.name} is a ${e.industry} company${e.placement.hq === 'lead' ? ` with its head office in ${get(e.hq).name}` : ''}.`,
        `During the year the company employed about ${e.employees.toLocaleString('en-US')} people.`,
        'The board thanks shareholders, customers and staff for their continued support.',
      ];
    } else if (e.type === 'country') {
      title = `${e.name} Statistical Yearbook`;
      paragraphs = [
        `${e.name} had a population of about ${e.population.toLocaleString('en-US')}.`,
        e.placement.capital === 'lead'
          ? `The capital, ${get(e.capital).name}, is the largest administrative centre.`
          : 'Figures are given for the whole country.',
        'All figures are provisional and subject to revision.',
      ];
    } else continue;
    out.push({
      path: `/reports/${e.slug.toLowerCase()}-${e.type === 'company' ? 'annual-report' : 'statistical-yearbook'}.pdf`,
      kind: 'report',
      title,
      entity: null,
      summary: paragraphs.slice(0, 2).join(' '),
      text: [title, ...paragraphs].join('\n\n'),
      pdf: { title, paragraphs },
    });
  }
  return out;
}

function homeDraft(world: World, lists: Draft[]): Draft {
  const links = lists
    .map((l) => `<li><a href="${escapeHtml(l.path)}">${escapeHtml(l.title)}</a></li>`)
    .join('');
  return {
    path: '/',
    kind: 'home',
    title: 'Main page',
    summary: '',
    text: '',
    entity: null,
    html: layout(
      ENCYCLOPEDIA,
      'Main page',
      `<article><h1>Welcome to Worldpedia</h1><p>${world.entities.length} articles.</p><ul>${links}</ul></article>`,
      [],
      [],
    ),
  };
}

/** Picks which news stories break and how; deterministic, at least one story per behaviour. */
function assignBehaviours(rng: Rng, news: Draft[]): Map<string, PageBehaviour> {
  const out = new Map<string, PageBehaviour>();
  const order = rng.shuffle(news);
  let i = 0;
  for (const [behaviour, share] of Object.entries(BROKEN_SHARES) as Array<[PageBehaviour, number]>) {
    const k = Math.max(1, Math.round(share * news.length));
    for (let j = 0; j < k && i < order.length; j++, i++) out.set((order[i] as Draft).path, behaviour);
  }
  return out;
}

async function finish(d: Draft, behaviour: PageBehaviour): Promise<SitePage> {
  const base = {
    path: d.path,
    kind: d.kind,
    title: d.title,
    summary: d.summary,
    text: d.text,
    entity: d.entity,
    behaviour,
    indexed: d.kind !== 'home',
  };
  if (d.pdf !== undefined)
    return { ...base, status: 200, contentType: 'application/pdf', body: await renderPdf(d.pdf) };
  const html = d.html ?? '';
  switch (behaviour) {
    case 'truncated':
      // Cut mid-document (likely mid-tag), as a dropped connection or a broken CMS leaves it.
      return {
        ...base,
        status: 200,
        contentType: HTML,
        body: Buffer.from(html.slice(0, Math.floor(html.length * 0.55))),
      };
    case 'wrong-type':
      return { ...base, status: 200, contentType: 'application/octet-stream', body: Buffer.from(html) };
    case 'not-found':
      return { ...base, status: 404, contentType: HTML, body: Buffer.from(notFoundHtml(d.path)) };
    case 'server-error':
      return { ...base, status: 500, contentType: HTML, body: Buffer.from(serverErrorHtml()) };
    default:
      return { ...base, status: 200, contentType: HTML, body: Buffer.from(html) };
  }
}

export async function buildSite(world: World): Promise<Site> {
  const rng = createRng(world.seed).fork('site');
  const entities = entityDrafts(world, rng.fork('entities'));
  const news = newsDrafts(world, rng.fork('news'));
  const lists = listDrafts(world, rng.fork('lists'));
  const reports = reportDrafts(world, rng.fork('reports'));
  const behaviours = assignBehaviours(rng.fork('behaviours'), news);
  const drafts = [...entities, ...news, ...lists, ...reports, homeDraft(world, lists)];
  const pages = new Map<string, SitePage>();
  for (const d of drafts) {
    if (pages.has(d.path)) continue;
    pages.set(d.path, await finish(d, behaviours.get(d.path) ?? 'ok'));
  }
  for (const r of redirects(world)) if (!pages.has(r.path)) pages.set(r.path, r);
  return { pages, indexed: [...pages.values()].filter((p) => p.indexed) };
}

/** "Surname,_Given" → the person's page (301), as encyclopedias redirect alternative titles; not indexed. */
function redirects(world: World): SitePage[] {
  return world.entities
    .filter((e): e is Person => e.type === 'person')
    .map((p) => {
      const [given, ...rest] = p.name.split(' ');
      const target = entityPath(p);
      return {
        path: `/wiki/${slugify(rest.join(' '))},_${slugify(given ?? '')}`,
        kind: 'redirect',
        title: p.name,
        summary: '',
        text: '',
        entity: p.id,
        behaviour: 'ok',
        indexed: false,
        status: 301,
        contentType: 'text/html; charset=utf-8',
        body: Buffer.from(
          `<html><body>Moved to <a href="${escapeHtml(target)}">${escapeHtml(p.name)}</a>.</body></html>`,
        ),
        location: target,
      };
    });
}
