/**
 * The synthetic world behind the sandbox web: entities of seven types with invented names, attributes and
 * relations. Pure data, generated from a seed; the same seed and size give a byte-identical world (compare
 * `JSON.stringify(world)`). Pages (render.ts) and questions (questions.ts) are derived from it.
 */
import { DrError } from '../../config/errors.ts';
import { inventWord, NameRegistry } from './names.ts';
import { createRng, type Rng } from './rng.ts';

export type EntityType = 'country' | 'city' | 'river' | 'university' | 'company' | 'person' | 'book';

/**
 * Where a fact is written on its entity's main page. `lead`: the first paragraph and infobox, which is also
 * what search snippets are cut from; `body`: a later section, reachable only by browsing; `deep`: past the
 * first ~40 KB of a long page, reachable only by paging.
 */
export type Placement = 'lead' | 'body' | 'deep';

export interface DateParts {
  year: number;
  month: number;
  day: number;
}

interface EntityBase<T extends EntityType, F extends string> {
  id: string;
  type: T;
  name: string;
  /** URL path segment of the main page: `/wiki/<slug>`. */
  slug: string;
  /** Other names a grader accepts for this entity as an answer (lower-case). */
  aliases: string[];
  /** Long pages are padded past the browse page size; their body facts are `deep`. */
  long: boolean;
  placement: Record<F, Placement>;
}

export interface Country extends EntityBase<
  'country',
  'capital' | 'currency' | 'language' | 'continent' | 'foundedYear'
> {
  capital: string;
  currency: string;
  language: string;
  continent: string;
  foundedYear: number;
  population: number;
}

export interface City extends EntityBase<'city', 'country' | 'river' | 'foundedYear'> {
  country: string;
  /** The river it lies on, if any. */
  river: string | null;
  foundedYear: number;
  population: number;
}

export interface River extends EntityBase<'river', 'source' | 'lengthKm'> {
  /** The country where it rises. */
  source: string;
  lengthKm: number;
}

export interface University extends EntityBase<'university', 'city' | 'foundedYear'> {
  city: string;
  foundedYear: number;
  students: number;
}

export interface Person extends EntityBase<
  'person',
  'birthCity' | 'birthYear' | 'occupation' | 'university'
> {
  birthCity: string;
  birth: DateParts;
  occupation: string;
  university: string;
}

export interface Company extends EntityBase<'company', 'founder' | 'hq' | 'foundedYear' | 'industry'> {
  founder: string;
  /** Headquarters city. */
  hq: string;
  foundedYear: number;
  industry: string;
  employees: number;
}

export interface Book extends EntityBase<'book', 'author' | 'year' | 'genre'> {
  author: string;
  year: number;
  genre: string;
  pages: number;
}

export type Entity = Country | City | River | University | Person | Company | Book;

export interface World {
  seed: number;
  size: number;
  entities: Entity[];
}

export interface WorldOptions {
  seed: number;
  /** Roughly the number of entities (default 1,000; at least 30). */
  size?: number;
}

export const OCCUPATIONS = [
  'architect',
  'painter',
  'chemist',
  'novelist',
  'engineer',
  'economist',
  'composer',
  'physician',
  'historian',
  'mathematician',
  'sculptor',
  'journalist',
  'botanist',
  'diplomat',
  'astronomer',
  'poet',
  'geologist',
  'lawyer',
] as const;
export const INDUSTRIES = [
  'shipbuilding',
  'textiles',
  'pharmaceuticals',
  'software',
  'mining',
  'publishing',
  'brewing',
  'aviation',
  'banking',
  'agriculture',
  'telecommunications',
  'railways',
  'glassmaking',
  'insurance',
] as const;
export const GENRES = [
  'novel',
  'memoir',
  'poetry collection',
  'history',
  'biography',
  'travelogue',
  'essay collection',
  'play',
] as const;
const COMPANY_SUFFIXES = [
  'Industries',
  'Holdings',
  'Works',
  'Group',
  'Company',
  'Trading',
  'Systems',
  'Partners',
];
const BOOK_NOUNS = [
  'Harbor',
  'Winter',
  'Lanterns',
  'Orchard',
  'Silence',
  'Bridges',
  'Salt',
  'Embers',
  'Tides',
  'Glass',
  'Crowns',
  'Ashes',
];
const BOOK_ADJS = [
  'Silent',
  'Last',
  'Distant',
  'Broken',
  'Golden',
  'Hidden',
  'Northern',
  'Quiet',
  'Burning',
  'Long',
];
const MIN_SIZE = 30;

/** Shares of `size` per type; every type gets at least a handful so all question templates have subjects. */
const SHARES: Record<EntityType, [number, number]> = {
  country: [0.03, 3],
  city: [0.15, 6],
  river: [0.04, 2],
  university: [0.05, 3],
  person: [0.4, 8],
  company: [0.15, 4],
  book: [0.18, 4],
};

export function slugify(name: string): string {
  return name
    .replace(/[^A-Za-z0-9 -]/g, '')
    .trim()
    .replace(/\s+/g, '_');
}

/** Probability that a non-identity fact is written in the lead (so search snippets show it). */
const LEAD_SHARE = 0.65;
/** Probability that an entity's main page is long enough to need paging. */
const LONG_SHARE = 0.08;

function placements<F extends string>(
  rng: Rng,
  long: boolean,
  identity: readonly F[],
  others: readonly F[],
): Record<F, Placement> {
  const out = {} as Record<F, Placement>;
  for (const f of identity) out[f] = 'lead';
  for (const f of others) out[f] = rng.chance(LEAD_SHARE) ? 'lead' : long ? 'deep' : 'body';
  return out;
}

export function generateWorld(options: WorldOptions): World {
  const seed = options.seed;
  const size = options.size ?? 1000;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new DrError(
      'SANDBOX_BAD_OPTIONS',
      `world seed must be an integer in [0, 2^32), got ${String(seed)}`,
    );
  }
  if (!Number.isInteger(size) || size < MIN_SIZE) {
    throw new DrError(
      'SANDBOX_BAD_OPTIONS',
      `world size must be an integer >= ${MIN_SIZE}, got ${String(size)}`,
    );
  }
  const root = createRng(seed);
  const names = new NameRegistry();
  const count = (t: EntityType): number => Math.max(SHARES[t][1], Math.round(size * SHARES[t][0]));
  const isLong = (rng: Rng): boolean => rng.chance(LONG_SHARE);

  const continents = Array.from({ length: 4 }, (_, i) =>
    names.claim(() => inventWord(root.fork(`continent${i}`), 2, 3)),
  );

  const r = root.fork('countries');
  const countries: Country[] = [];
  for (let i = 0; i < count('country'); i++) {
    const name = names.claim(() => inventWord(r, 2, 3) + r.pick(['ia', 'a', 'land', 'istan', 'ora']));
    const long = isLong(r);
    const language = names.claim(() => inventWord(r, 1, 2) + r.pick(['ic', 'ish', 'ese', 'an']));
    const currency = names.claim(() => inventWord(r, 1, 2).toLowerCase());
    countries.push({
      id: `country:${i}`,
      type: 'country',
      name,
      slug: slugify(name),
      aliases: [`republic of ${name.toLowerCase()}`],
      long,
      placement: placements(
        r,
        long,
        ['continent'] as const,
        ['capital', 'currency', 'language', 'foundedYear'] as const,
      ),
      capital: '',
      currency,
      language,
      continent: r.pick(continents),
      foundedYear: r.int(1200, 1960),
      population: r.int(300, 90_000) * 1000,
    });
  }

  const rc = root.fork('cities');
  const cities: City[] = [];
  for (let i = 0; i < count('city'); i++) {
    // Round-robin first so that every country has cities (and so a capital), then at random.
    const country =
      i < countries.length * 2 ? (countries[i % countries.length] as Country) : rc.pick(countries);
    const name = names.claim(() => inventWord(rc, 2, 3));
    const long = isLong(rc);
    cities.push({
      id: `city:${i}`,
      type: 'city',
      name,
      slug: slugify(name),
      aliases: [`${name.toLowerCase()} city`],
      long,
      placement: placements(rc, long, ['country'] as const, ['river', 'foundedYear'] as const),
      country: country.id,
      river: null,
      foundedYear: rc.int(600, 1900),
      population: rc.int(8, 4000) * 1000,
    });
  }
  for (const country of countries)
    country.capital = (cities.find((c) => c.country === country.id) as City).id;

  const rr = root.fork('rivers');
  const rivers: River[] = [];
  for (let i = 0; i < count('river'); i++) {
    const word = names.claim(() => inventWord(rr, 2, 2));
    const name = `${word} River`;
    const long = isLong(rr);
    const source = rr.pick(countries);
    rivers.push({
      id: `river:${i}`,
      type: 'river',
      name,
      slug: slugify(name),
      aliases: [word.toLowerCase(), `river ${word.toLowerCase()}`],
      long,
      placement: placements(rr, long, ['lengthKm'] as const, ['source'] as const),
      source: source.id,
      lengthKm: rr.int(80, 3200),
    });
  }
  // A city lies on a river that rises in its country, when there is one (about half of them do).
  for (const city of cities) {
    const candidates = rivers.filter((v) => v.source === city.country);
    if (candidates.length > 0 && rr.chance(0.6)) city.river = rr.pick(candidates).id;
    else city.placement.river = 'lead';
  }

  const ru = root.fork('universities');
  const universities: University[] = [];
  const uniCities = ru.shuffle(cities);
  for (let i = 0; i < count('university'); i++) {
    const city = uniCities[i % uniCities.length] as City;
    const name = names.claim(() =>
      i < uniCities.length && ru.chance(0.6)
        ? `University of ${city.name}`
        : `${inventWord(ru, 2, 3)} ${ru.pick(['Institute of Technology', 'College', 'University'])}`,
    );
    const long = isLong(ru);
    universities.push({
      id: `university:${i}`,
      type: 'university',
      name,
      slug: slugify(name),
      aliases: [],
      long,
      placement: placements(ru, long, ['city'] as const, ['foundedYear'] as const),
      city: city.id,
      foundedYear: ru.int(1300, 1970),
      students: ru.int(20, 600) * 100,
    });
  }

  const rp = root.fork('people');
  const people: Person[] = [];
  for (let i = 0; i < count('person'); i++) {
    const first = inventWord(rp, 2, 2);
    const name = names.claim(() => `${first} ${inventWord(rp, 2, 3)}`);
    const long = isLong(rp);
    people.push({
      id: `person:${i}`,
      type: 'person',
      name,
      slug: slugify(name),
      aliases: [],
      long,
      placement: placements(
        rp,
        long,
        ['occupation'] as const,
        ['birthCity', 'birthYear', 'university'] as const,
      ),
      birthCity: rp.pick(cities).id,
      birth: { year: rp.int(1850, 1995), month: rp.int(1, 12), day: rp.int(1, 28) },
      occupation: rp.pick(OCCUPATIONS),
      university: rp.pick(universities).id,
    });
  }

  const rk = root.fork('companies');
  const companies: Company[] = [];
  const founders = rk.shuffle(people.filter((p) => p.birth.year <= 1980));
  for (let i = 0; i < count('company'); i++) {
    const founder = founders[i % founders.length] as Person;
    const word = inventWord(rk, 2, 3);
    const name = names.claim(() => `${word} ${rk.pick(COMPANY_SUFFIXES)}`);
    const long = isLong(rk);
    companies.push({
      id: `company:${i}`,
      type: 'company',
      name,
      slug: slugify(name),
      aliases: [word.toLowerCase()],
      long,
      placement: placements(rk, long, ['industry'] as const, ['founder', 'hq', 'foundedYear'] as const),
      founder: founder.id,
      hq: rk.pick(cities).id,
      foundedYear: Math.min(2020, founder.birth.year + rk.int(24, 45)),
      industry: rk.pick(INDUSTRIES),
      employees: rk.int(12, 90_000),
    });
  }

  const rb = root.fork('books');
  const books: Book[] = [];
  const authors = rb.shuffle(people.filter((p) => p.birth.year <= 1990));
  for (let i = 0; i < count('book'); i++) {
    const author = authors[i % authors.length] as Person;
    const name = names.claim(() => {
      switch (rb.int(0, 2)) {
        case 0:
          return `The ${rb.pick(BOOK_ADJS)} ${rb.pick(BOOK_NOUNS)} of ${inventWord(rb, 2, 2)}`;
        case 1:
          return `${inventWord(rb, 2, 3)} ${rb.pick(BOOK_NOUNS)}`;
        default:
          return `A ${rb.pick(BOOK_ADJS)} ${inventWord(rb, 2, 2)}`;
      }
    });
    const long = isLong(rb);
    books.push({
      id: `book:${i}`,
      type: 'book',
      name,
      slug: slugify(name),
      aliases: [],
      long,
      placement: placements(rb, long, ['genre'] as const, ['author', 'year'] as const),
      author: author.id,
      year: Math.min(2024, author.birth.year + rb.int(22, 70)),
      genre: rb.pick(GENRES),
      pages: rb.int(90, 900),
    });
  }

  return {
    seed,
    size,
    entities: [...countries, ...cities, ...rivers, ...universities, ...people, ...companies, ...books],
  };
}

/** Id → entity lookup; throws a typed error for a dangling id (a bug in the generator, never user input). */
export function indexWorld(world: World): (id: string) => Entity {
  const byId = new Map(world.entities.map((e) => [e.id, e]));
  return (id) => {
    const e = byId.get(id);
    if (e === undefined)
      throw new DrError('SANDBOX_DANGLING_ID', `world has no entity ${id}; regenerate the world`);
    return e;
  };
}
