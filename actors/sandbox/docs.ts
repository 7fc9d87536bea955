/**
 * Entity → document: the words of a main page, before any markup. Each fact is written as a natural sentence
 * in the part of the page its placement names (lead, a body section, or past the paging boundary of a long
 * page), surrounded by fact-free filler, so a reader has to find it. html.ts and pdf.ts only lay these out.
 */
import type { Book, City, Company, Country, DateParts, Entity, Person, River, University } from './world.ts';
import { createRng, type Rng } from './rng.ts';

export interface DocSection {
  heading: string;
  paragraphs: string[];
}

export interface DocLink {
  title: string;
  path: string;
}

export interface Doc {
  title: string;
  /** First paragraph(s): search snippets are cut from these and the infobox. */
  lead: string[];
  infobox: Array<[string, string]>;
  sections: DocSection[];
  /** Related pages (sidebar, "see also"). */
  links: DocLink[];
}

/** Characters of filler that push a long page's deep facts past the reader's ~40 KB viewport. */
export const LONG_PAGE_FILLER_CHARS = 46_000;

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

export function formatDate(d: DateParts): string {
  return `${d.day} ${MONTHS[d.month - 1] ?? 'January'} ${d.year}`;
}

export function entityPath(e: Entity): string {
  return `/wiki/${e.slug}`;
}

/** Text of a document as an extractor would see it, in reading order. */
export function docText(doc: Doc): string {
  const parts = [doc.title, ...doc.lead, ...doc.infobox.map(([k, v]) => `${k}: ${v}`)];
  for (const s of doc.sections) parts.push(s.heading, ...s.paragraphs);
  return parts.join('\n\n');
}

/** The part of a document that search snippets may quote. */
export function docSummary(doc: Doc): string {
  return [...doc.lead, ...doc.infobox.map(([k, v]) => `${k}: ${v}.`)].join(' ');
}

const ADJS = [
  'notable',
  'lasting',
  'modest',
  'considerable',
  'uneven',
  'gradual',
  'remarkable',
  'quiet',
  'steady',
  'early',
  'broad',
  'renewed',
];
const NOUNS = [
  'interest',
  'debate',
  'attention',
  'investment',
  'recognition',
  'criticism',
  'growth',
  'restoration',
  'scrutiny',
  'support',
];
const GROUPS = [
  'scholars',
  'visitors',
  'critics',
  'local historians',
  'the regional press',
  'civic groups',
  'archivists',
  'collectors',
];
const TOPICS = [
  'its archives',
  'the surrounding region',
  'public records',
  'contemporary accounts',
  'later retrospectives',
  'letters of the period',
];

/** Fact-free prose: no digits, no relation words, so it never contradicts or leaks a fact. */
function fillerSentence(rng: Rng, name: string): string {
  const a = rng.pick(ADJS);
  const n = rng.pick(NOUNS);
  const g = rng.pick(GROUPS);
  const t = rng.pick(TOPICS);
  switch (rng.int(0, 9)) {
    case 0:
      return `Over the following decades ${name} attracted ${a} ${n} from ${g}.`;
    case 1:
      return `Much of what is known comes from ${t}, which ${g} have examined in detail.`;
    case 2:
      return `Accounts differ on the details, and ${g} continue to weigh the evidence in ${t}.`;
    case 3:
      return `The period saw ${a} ${n}, although the pace of change varied from year to year.`;
    case 4:
      return `Several commentators have described the legacy of ${name} as one of ${a} ${n}.`;
    case 5:
      return `A number of studies drawing on ${t} have since revisited these questions.`;
    case 6:
      return `Later assessments by ${g} placed greater weight on ${a} ${n} than earlier ones had.`;
    case 7:
      return `Public ${n} remained ${a} throughout, as noted by ${g} at the time.`;
    case 8:
      return `References to ${name} appear frequently in ${t}.`;
    default:
      return `The matter drew ${a} ${n}, and discussion among ${g} has continued since.`;
  }
}

function filler(rng: Rng, name: string, sentences: number): string {
  const out: string[] = [];
  for (let i = 0; i < sentences; i++) out.push(fillerSentence(rng, name));
  return out.join(' ');
}

function fillerParagraphs(rng: Rng, name: string, chars: number): string[] {
  const out: string[] = [];
  let n = 0;
  while (n < chars) {
    const p = filler(rng, name, rng.int(4, 8));
    out.push(p);
    n += p.length + 2;
  }
  return out;
}

const CHRONICLE_HEADINGS = ['Chronology', 'Detailed history', 'Reception', 'Archival record', 'Commentary'];

/**
 * Assembles a document: the lead, then body sections each mixing its facts with filler; on a long page the
 * chronicle filler comes before a final section that holds the deep facts.
 */
function assemble(
  rng: Rng,
  e: Entity,
  lead: string,
  infobox: Array<[string, string]>,
  body: Array<[string, string[]]>,
  deep: string[],
  links: DocLink[],
): Doc {
  const sections: DocSection[] = body.map(([heading, facts]) => ({
    heading,
    paragraphs: [
      filler(rng, e.name, rng.int(2, 4)),
      ...facts.map((f) => `${f} ${filler(rng, e.name, rng.int(1, 3))}`),
      filler(rng, e.name, rng.int(2, 4)),
    ],
  }));
  if (e.long) {
    let remaining = LONG_PAGE_FILLER_CHARS;
    for (const heading of CHRONICLE_HEADINGS) {
      const chunk = Math.ceil(LONG_PAGE_FILLER_CHARS / CHRONICLE_HEADINGS.length);
      sections.push({ heading, paragraphs: fillerParagraphs(rng, e.name, chunk) });
      remaining -= chunk;
      if (remaining <= 0) break;
    }
    sections.push({
      heading: 'Later years',
      paragraphs: [filler(rng, e.name, 2), ...deep, filler(rng, e.name, 3)],
    });
  }
  return { title: e.name, lead: [`${lead} ${filler(rng, e.name, 1)}`], infobox, sections, links };
}

type Lookup = (id: string) => Entity;

/** Sorts fact sentences by placement: lead clauses, body sentences per section, deep sentences. */
class FactSink {
  readonly lead: string[] = [];
  readonly body = new Map<string, string[]>();
  readonly deep: string[] = [];
  readonly infobox: Array<[string, string]> = [];

  add(placement: 'lead' | 'body' | 'deep', section: string, sentence: string, box?: [string, string]): void {
    if (placement === 'lead') {
      this.lead.push(sentence);
      if (box !== undefined) this.infobox.push(box);
    } else if (placement === 'body') {
      const list = this.body.get(section) ?? [];
      list.push(sentence);
      this.body.set(section, list);
    } else this.deep.push(sentence);
  }

  sections(order: string[]): Array<[string, string[]]> {
    return order.map((h) => [h, this.body.get(h) ?? []]);
  }
}

function link(e: Entity): DocLink {
  return { title: e.name, path: entityPath(e) };
}

function surname(p: Person): string {
  return p.name.split(' ').slice(1).join(' ');
}

function personDoc(rng: Rng, p: Person, get: Lookup, backlinks: Entity[]): Doc {
  const city = get(p.birthCity);
  const uni = get(p.university);
  const s = new FactSink();
  const sn = surname(p);
  const bornLead = [
    p.placement.birthYear === 'lead' ? `born ${formatDate(p.birth)}` : '',
    p.placement.birthCity === 'lead' ? `in ${city.name}` : '',
  ].filter(Boolean);
  const born = bornLead.length > 0 ? ` (${bornLead.join(' ').replace(/^in /, 'born in ')})` : '';
  let lead = `${p.name}${born} is a ${p.occupation}.`;
  s.infobox.push(['Occupation', p.occupation]);
  if (p.placement.birthYear === 'lead') s.infobox.push(['Born', formatDate(p.birth)]);
  if (p.placement.birthCity === 'lead') s.infobox.push(['Place of birth', city.name]);
  if (p.placement.university === 'lead') {
    lead += ` ${sn} studied at ${uni.name}.`;
    s.infobox.push(['Alma mater', uni.name]);
  }
  if (p.placement.birthCity !== 'lead')
    s.add(p.placement.birthCity, 'Early life', `${sn} was born in the city of ${city.name}.`);
  if (p.placement.birthYear !== 'lead')
    s.add(p.placement.birthYear, 'Early life', `${sn} was born on ${formatDate(p.birth)}.`);
  if (p.placement.university !== 'lead')
    s.add(
      p.placement.university,
      'Education',
      `${sn} later enrolled at ${uni.name}, graduating with honours.`,
    );
  const works = backlinks.map((b) =>
    b.type === 'book' ? `${sn} wrote ${b.name}.` : `${sn} founded ${b.name}.`,
  );
  const body = s.sections(['Early life', 'Education']);
  body.push(['Career', [`${sn} worked for many years as a ${p.occupation}.`, ...works]]);
  return assemble(rng, p, lead, s.infobox, body, s.deep, [link(city), link(uni), ...backlinks.map(link)]);
}

function cityDoc(rng: Rng, c: City, get: Lookup, backlinks: Entity[]): Doc {
  const country = get(c.country);
  const river = c.river === null ? null : get(c.river);
  const s = new FactSink();
  let lead = `${c.name} is a city in ${country.name}`;
  s.infobox.push(['Country', country.name]);
  if (river !== null && c.placement.river === 'lead') {
    lead += `, on the ${river.name}`;
    s.infobox.push(['River', river.name]);
  }
  lead += '.';
  if (c.placement.foundedYear === 'lead') {
    lead += ` The city was founded in ${c.foundedYear}.`;
    s.infobox.push(['Founded', String(c.foundedYear)]);
  } else
    s.add(c.placement.foundedYear, 'History', `Records show that ${c.name} was founded in ${c.foundedYear}.`);
  if (river !== null && c.placement.river !== 'lead')
    s.add(c.placement.river, 'Geography', `${c.name} lies on the banks of the ${river.name}.`);
  const body = s.sections(['History', 'Geography']);
  body.push(['Demographics', [`The population was estimated at ${c.population.toLocaleString('en-US')}.`]]);
  const natives = backlinks.filter((b) => b.type === 'person').map((b) => b.name);
  if (natives.length > 0)
    body.push(['Notable people', [`People born in ${c.name} include ${natives.join(', ')}.`]]);
  return assemble(rng, c, lead, s.infobox, body, s.deep, [
    link(country),
    ...(river ? [link(river)] : []),
    ...backlinks.slice(0, 8).map(link),
  ]);
}

function countryDoc(rng: Rng, c: Country, get: Lookup, backlinks: Entity[]): Doc {
  const capital = get(c.capital);
  const s = new FactSink();
  let lead = `${c.name} is a country in ${c.continent}.`;
  s.infobox.push(['Continent', c.continent]);
  if (c.placement.capital === 'lead') {
    lead += ` Its capital is ${capital.name}.`;
    s.infobox.push(['Capital', capital.name]);
  } else
    s.add(
      c.placement.capital,
      'Government',
      `The seat of government and capital of ${c.name} is ${capital.name}.`,
    );
  if (c.placement.currency === 'lead') {
    lead += ` The currency is the ${c.currency}.`;
    s.infobox.push(['Currency', c.currency]);
  } else
    s.add(
      c.placement.currency,
      'Economy',
      `Prices in ${c.name} are quoted in the ${c.currency}, the national currency.`,
    );
  if (c.placement.language === 'lead') {
    lead += ` The official language is ${c.language}.`;
    s.infobox.push(['Official language', c.language]);
  } else
    s.add(
      c.placement.language,
      'Culture',
      `Most residents speak ${c.language}, which is the official language.`,
    );
  if (c.placement.foundedYear === 'lead') {
    lead += ` It was established as a state in ${c.foundedYear}.`;
    s.infobox.push(['Established', String(c.foundedYear)]);
  } else
    s.add(c.placement.foundedYear, 'History', `${c.name} was established as a state in ${c.foundedYear}.`);
  const body = s.sections(['History', 'Government', 'Economy', 'Culture']);
  body.push(['Demographics', [`The population is about ${c.population.toLocaleString('en-US')}.`]]);
  return assemble(rng, c, lead, s.infobox, body, s.deep, [
    link(capital),
    ...backlinks.slice(0, 10).map(link),
  ]);
}

function riverDoc(rng: Rng, r: River, get: Lookup): Doc {
  const source = get(r.source);
  const s = new FactSink();
  let lead = `The ${r.name} is a river ${r.lengthKm.toLocaleString('en-US')} kilometres long.`;
  s.infobox.push(['Length', `${r.lengthKm} km`]);
  if (r.placement.source === 'lead') {
    lead += ` It rises in ${source.name}.`;
    s.infobox.push(['Source', source.name]);
  } else
    s.add(r.placement.source, 'Course', `The ${r.name} has its source in the highlands of ${source.name}.`);
  return assemble(rng, r, lead, s.infobox, s.sections(['Course']), s.deep, [link(source)]);
}

function universityDoc(rng: Rng, u: University, get: Lookup): Doc {
  const city = get(u.city);
  const s = new FactSink();
  let lead = `${u.name} is a university in the city of ${city.name}.`;
  s.infobox.push(['Location', city.name]);
  if (u.placement.foundedYear === 'lead') {
    lead += ` It was founded in ${u.foundedYear}.`;
    s.infobox.push(['Established', String(u.foundedYear)]);
  } else s.add(u.placement.foundedYear, 'History', `${u.name} received its charter in ${u.foundedYear}.`);
  const body = s.sections(['History']);
  body.push(['Students', [`Around ${u.students.toLocaleString('en-US')} students are enrolled.`]]);
  return assemble(rng, u, lead, s.infobox, body, s.deep, [link(city)]);
}

function companyDoc(rng: Rng, c: Company, get: Lookup): Doc {
  const founder = get(c.founder);
  const hq = get(c.hq);
  const s = new FactSink();
  let lead = `${c.name} is a ${c.industry} company`;
  s.infobox.push(['Industry', c.industry]);
  if (c.placement.hq === 'lead') {
    lead += ` headquartered in ${hq.name}`;
    s.infobox.push(['Headquarters', hq.name]);
  }
  lead += '.';
  if (c.placement.founder === 'lead' && c.placement.foundedYear === 'lead')
    lead += ` It was founded by ${founder.name} in ${c.foundedYear}.`;
  else if (c.placement.founder === 'lead') lead += ` It was founded by ${founder.name}.`;
  else if (c.placement.foundedYear === 'lead') lead += ` It was founded in ${c.foundedYear}.`;
  if (c.placement.founder === 'lead') s.infobox.push(['Founder', founder.name]);
  if (c.placement.foundedYear === 'lead') s.infobox.push(['Founded', String(c.foundedYear)]);
  if (c.placement.founder !== 'lead')
    s.add(
      c.placement.founder,
      'History',
      `The business was started by ${founder.name}, who led it for a decade.`,
    );
  if (c.placement.foundedYear !== 'lead')
    s.add(c.placement.foundedYear, 'History', `${c.name} was incorporated in ${c.foundedYear}.`);
  if (c.placement.hq !== 'lead')
    s.add(c.placement.hq, 'Operations', `The company's head office is located in ${hq.name}.`);
  const body = s.sections(['History', 'Operations']);
  body.push(['Workforce', [`${c.name} employs about ${c.employees.toLocaleString('en-US')} people.`]]);
  return assemble(rng, c, lead, s.infobox, body, s.deep, [link(founder), link(hq)]);
}

function bookDoc(rng: Rng, b: Book, get: Lookup): Doc {
  const author = get(b.author);
  const s = new FactSink();
  let lead = `${b.name} is a ${b.placement.year === 'lead' ? `${b.year} ` : ''}${b.genre}`;
  s.infobox.push(['Genre', b.genre]);
  if (b.placement.author === 'lead') {
    lead += ` by ${author.name}`;
    s.infobox.push(['Author', author.name]);
  }
  lead += '.';
  if (b.placement.year === 'lead') s.infobox.push(['Published', String(b.year)]);
  else s.add(b.placement.year, 'Publication', `The first edition of ${b.name} appeared in ${b.year}.`);
  if (b.placement.author !== 'lead')
    s.add(b.placement.author, 'Background', `${b.name} was written by ${author.name}.`);
  const body = s.sections(['Background', 'Publication']);
  body.push(['Format', [`The first edition ran to ${b.pages} pages.`]]);
  return assemble(rng, b, lead, s.infobox, body, s.deep, [link(author)]);
}

/** Entities whose page should link back to `e` (books and companies of a person, natives of a city, ...). */
export function backlinkIndex(entities: Entity[]): Map<string, Entity[]> {
  const out = new Map<string, Entity[]>();
  const add = (id: string, e: Entity): void => {
    const list = out.get(id) ?? [];
    list.push(e);
    out.set(id, list);
  };
  for (const e of entities) {
    if (e.type === 'book') add(e.author, e);
    else if (e.type === 'company') add(e.founder, e);
    else if (e.type === 'person') add(e.birthCity, e);
    else if (e.type === 'city') add(e.country, e);
  }
  return out;
}

export function entityDoc(seed: number, e: Entity, get: Lookup, backlinks: Entity[]): Doc {
  const rng = createRng(seed).fork(`doc:${e.id}`);
  switch (e.type) {
    case 'person':
      return personDoc(rng, e, get, backlinks);
    case 'city':
      return cityDoc(rng, e, get, backlinks);
    case 'country':
      return countryDoc(rng, e, get, backlinks);
    case 'river':
      return riverDoc(rng, e, get);
    case 'university':
      return universityDoc(rng, e, get);
    case 'company':
      return companyDoc(rng, e, get);
    case 'book':
      return bookDoc(rng, e, get);
  }
}
