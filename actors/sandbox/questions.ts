/**
 * Questions with ground truth, derived from a world: single-hop ("In which city was X born?") and 2-3 hop
 * chains ("In which country is the city where the founder of X was born?"). Each question records its hops
 * (subject page, fact, where on the page the fact is written) so tests can check it is answerable and
 * training can weigh difficulty. Rows come out in the layout of data/deepresearcher/*.parquet.
 *
 * Split by the first subject entity (80/10/10), so no entity is asked about in more than one split.
 */
import { writeFileSync } from 'node:fs';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { entityPath } from './docs.ts';
import { createRng, hashString } from './rng.ts';
import { indexWorld, type Entity, type EntityType, type Placement, type World } from './world.ts';

export type Split = 'train' | 'dev' | 'test';
export const SPLITS: readonly Split[] = ['train', 'dev', 'test'];

export interface Hop {
  /** Subject entity of this hop (its main page holds the fact). */
  entity: string;
  path: string;
  fact: string;
  placement: Placement;
  /** The value found: the next hop's subject name, or the answer. */
  value: string;
}

export interface SandboxQuestion {
  /** Stable and unique: `sandbox_<seed>_<subject>_<template>`. */
  id: string;
  /** Fact chain, e.g. `company.founder>person.birthCity>city.country`. */
  template: string;
  question: string;
  /** Canonical answer first, then aliases. */
  answers: string[];
  hops: Hop[];
  /** Some hop's fact is not in any search snippet of its main page (lead), so a page must be read. */
  needsBrowse: boolean;
  split: Split;
}

/** One row of the DeepResearcher parquet layout (verl's RL data format). */
export interface QuestionRow {
  data_source: string;
  prompt: Array<{ content: string; role: 'user' }>;
  ability: string;
  reward_model: { ground_truth: string; style: string };
  extra_info: { index: string; split: string };
}

export const ANSWER_SPLIT = '<|answer_split|>';
export const DATA_SOURCE = 'sandbox';

type Value = { kind: 'entity'; entity: Entity } | { kind: 'literal'; answers: string[] };
type Get = (id: string) => Entity;

/** The value of fact `key` of `e`, or null when the entity has no such fact (a city on no river). */
function factValue(e: Entity, key: string, get: Get): Value | null {
  const ent = (id: string | null): Value | null => (id === null ? null : { kind: 'entity', entity: get(id) });
  const lit = (...answers: string[]): Value => ({ kind: 'literal', answers });
  switch (`${e.type}.${key}`) {
    case 'person.birthCity':
      return ent((e as Extract<Entity, { type: 'person' }>).birthCity);
    case 'person.birthYear':
      return lit(String((e as Extract<Entity, { type: 'person' }>).birth.year));
    case 'person.occupation':
      return lit((e as Extract<Entity, { type: 'person' }>).occupation);
    case 'person.university':
      return ent((e as Extract<Entity, { type: 'person' }>).university);
    case 'city.country':
      return ent((e as Extract<Entity, { type: 'city' }>).country);
    case 'city.river':
      return ent((e as Extract<Entity, { type: 'city' }>).river);
    case 'city.foundedYear':
      return lit(String((e as Extract<Entity, { type: 'city' }>).foundedYear));
    case 'country.capital':
      return ent((e as Extract<Entity, { type: 'country' }>).capital);
    case 'country.currency': {
      const c = (e as Extract<Entity, { type: 'country' }>).currency;
      return lit(c, `${c}s`, `${e.name.toLowerCase()} ${c}`);
    }
    case 'country.language': {
      const l = (e as Extract<Entity, { type: 'country' }>).language;
      return lit(l, `${l} language`);
    }
    case 'country.continent':
      return lit((e as Extract<Entity, { type: 'country' }>).continent);
    case 'country.foundedYear':
      return lit(String((e as Extract<Entity, { type: 'country' }>).foundedYear));
    case 'river.source':
      return ent((e as Extract<Entity, { type: 'river' }>).source);
    case 'university.city':
      return ent((e as Extract<Entity, { type: 'university' }>).city);
    case 'university.foundedYear':
      return lit(String((e as Extract<Entity, { type: 'university' }>).foundedYear));
    case 'company.founder':
      return ent((e as Extract<Entity, { type: 'company' }>).founder);
    case 'company.hq':
      return ent((e as Extract<Entity, { type: 'company' }>).hq);
    case 'company.foundedYear':
      return lit(String((e as Extract<Entity, { type: 'company' }>).foundedYear));
    case 'company.industry':
      return lit((e as Extract<Entity, { type: 'company' }>).industry);
    case 'book.author':
      return ent((e as Extract<Entity, { type: 'book' }>).author);
    case 'book.year':
      return lit(String((e as Extract<Entity, { type: 'book' }>).year));
    case 'book.genre':
      return lit((e as Extract<Entity, { type: 'book' }>).genre);
    default:
      throw new RangeError(`no fact ${key} on ${e.type}`);
  }
}

function placementOf(e: Entity, key: string): Placement {
  return (e.placement as Record<string, Placement>)[key] ?? 'lead';
}

interface Template {
  type: EntityType;
  /** Facts followed from the subject: the value of each is the subject of the next. */
  facts: string[];
  /** Phrasings; `{X}` is the subject's name. */
  texts: string[];
}

const T = (type: EntityType, facts: string[], ...texts: string[]): Template => ({ type, facts, texts });

export const SINGLE_HOP: Template[] = [
  T('person', ['birthCity'], 'In which city was {X} born?', 'What is the birthplace of {X}?'),
  T('person', ['birthYear'], 'In what year was {X} born?', 'What year was {X} born in?'),
  T('person', ['occupation'], 'What is the occupation of {X}?', 'What does {X} do for a living?'),
  T('person', ['university'], 'Which university did {X} attend?', 'Where did {X} study?'),
  T('city', ['country'], 'In which country is {X} located?', '{X} is a city in which country?'),
  T('city', ['river'], 'On which river does {X} lie?', 'Which river flows through the city of {X}?'),
  T('city', ['foundedYear'], 'In what year was the city of {X} founded?'),
  T('country', ['capital'], 'What is the capital of {X}?', 'Which city is the capital of {X}?'),
  T('country', ['currency'], 'What is the currency of {X}?', 'What currency is used in {X}?'),
  T('country', ['language'], 'What is the official language of {X}?'),
  T('country', ['continent'], 'On which continent is {X}?'),
  T('country', ['foundedYear'], 'In what year was {X} established as a state?'),
  T('river', ['source'], 'In which country does the {X} rise?'),
  T('university', ['city'], 'In which city is {X} located?'),
  T('university', ['foundedYear'], 'In what year was {X} founded?'),
  T('company', ['founder'], 'Who founded {X}?', 'Who is the founder of {X}?'),
  T('company', ['hq'], 'In which city is {X} headquartered?', 'Where is {X} headquartered?'),
  T('company', ['foundedYear'], 'In what year was {X} founded?'),
  T('company', ['industry'], 'In which industry does {X} operate?'),
  T('book', ['author'], 'Who wrote {X}?', 'Who is the author of {X}?'),
  T('book', ['year'], 'In what year was {X} published?'),
  T('book', ['genre'], 'What kind of work is {X}?'),
];

export const MULTI_HOP: Template[] = [
  T('book', ['author', 'birthCity'], 'In which city was the author of {X} born?'),
  T('book', ['author', 'university'], 'Which university did the author of {X} attend?'),
  T('book', ['author', 'birthYear'], 'In what year was the author of {X} born?'),
  T('company', ['founder', 'birthCity'], 'In which city was the founder of {X} born?'),
  T('company', ['founder', 'university'], 'Which university did the founder of {X} attend?'),
  T('company', ['hq', 'country'], 'In which country is {X} headquartered?'),
  T('person', ['birthCity', 'country'], 'In which country was {X} born?'),
  T('person', ['university', 'city'], 'In which city is the university that {X} attended?'),
  T('city', ['country', 'capital'], 'What is the capital of the country where {X} is located?'),
  T('city', ['river', 'source'], 'In which country does the river that flows through {X} rise?'),
  T('country', ['capital', 'foundedYear'], 'In what year was the capital of {X} founded?'),
  T(
    'book',
    ['author', 'birthCity', 'country'],
    'In which country is the city where the author of {X} was born?',
  ),
  T(
    'company',
    ['founder', 'birthCity', 'country'],
    'In which country is the city where the founder of {X} was born?',
  ),
  T(
    'company',
    ['hq', 'country', 'capital'],
    'What is the capital of the country where {X} is headquartered?',
  ),
  T(
    'person',
    ['birthCity', 'country', 'currency'],
    'What currency is used in the country where {X} was born?',
  ),
  T('person', ['university', 'city', 'country'], 'In which country is the university that {X} attended?'),
  T(
    'book',
    ['author', 'university', 'city'],
    'In which city is the university attended by the author of {X}?',
  ),
];

/** Share of a subject's applicable multi-hop templates that become questions (keeps single-hop the majority). */
const MULTI_HOP_SHARE = 0.35;

function splitOf(seed: number, entityId: string): Split {
  const h = hashString(`${seed}:${entityId}`) % 10;
  return h === 0 ? 'test' : h === 1 ? 'dev' : 'train';
}

function build(world: World, get: Get, subject: Entity, t: Template, text: string): SandboxQuestion | null {
  const hops: Hop[] = [];
  let cur: Entity = subject;
  let answers: string[] = [];
  for (let i = 0; i < t.facts.length; i++) {
    const key = t.facts[i] as string;
    const v = factValue(cur, key, get);
    if (v === null) return null;
    const last = i === t.facts.length - 1;
    if (v.kind === 'literal' && !last)
      throw new RangeError(`template ${t.facts.join('>')} continues past a literal`);
    const value = v.kind === 'entity' ? v.entity.name : (v.answers[0] as string);
    hops.push({ entity: cur.id, path: entityPath(cur), fact: key, placement: placementOf(cur, key), value });
    if (v.kind === 'entity') {
      if (last) answers = [v.entity.name, ...v.entity.aliases];
      else cur = v.entity;
    } else answers = v.answers;
  }
  const template = t.facts.map((f, i) => (i === 0 ? `${t.type}.${f}` : f)).join('>');
  return {
    id: `sandbox_${world.seed}_${subject.id.replace(':', '')}_${template}`,
    template,
    question: text.replace('{X}', subject.name),
    answers,
    hops,
    needsBrowse: hops.some((h) => h.placement !== 'lead'),
    split: splitOf(world.seed, subject.id),
  };
}

/** Every question of the world, in a seeded shuffled order. */
export function generateQuestions(world: World): SandboxQuestion[] {
  const get = indexWorld(world);
  const rng = createRng(world.seed).fork('questions');
  const out: SandboxQuestion[] = [];
  for (const e of world.entities) {
    for (const t of SINGLE_HOP) {
      if (t.type !== e.type) continue;
      const q = build(world, get, e, t, rng.pick(t.texts));
      if (q !== null) out.push(q);
    }
    for (const t of MULTI_HOP) {
      if (t.type !== e.type) continue;
      const text = rng.pick(t.texts);
      if (!rng.chance(MULTI_HOP_SHARE)) continue;
      const q = build(world, get, e, t, text);
      if (q !== null) out.push(q);
    }
  }
  return rng.shuffle(out);
}

export function toRow(q: SandboxQuestion): QuestionRow {
  return {
    data_source: DATA_SOURCE,
    prompt: [{ content: q.question, role: 'user' }],
    ability: 'search & question answering',
    reward_model: { ground_truth: q.answers.join(ANSWER_SPLIT), style: 'rule' },
    extra_info: { index: q.id, split: q.split },
  };
}

/** Rows of one split (or all) in the parquet layout. */
export function questions(world: World, split?: Split): QuestionRow[] {
  return generateQuestions(world)
    .filter((q) => split === undefined || q.split === split)
    .map(toRow);
}

const STRING = { type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8' } as const;

/** Parquet schema of data/deepresearcher/*.parquet, field for field. */
const ROW_SCHEMA = [
  { name: 'schema', repetition_type: 'REQUIRED', num_children: 5 },
  { name: 'data_source', ...STRING },
  { name: 'prompt', repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'content', ...STRING },
  { name: 'role', ...STRING },
  { name: 'ability', ...STRING },
  { name: 'reward_model', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'ground_truth', ...STRING },
  { name: 'style', ...STRING },
  { name: 'extra_info', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'index', ...STRING },
  { name: 'split', ...STRING },
];

const COLUMNS = ['data_source', 'prompt', 'ability', 'reward_model', 'extra_info'] as const;

export function questionsParquet(rows: QuestionRow[]): ArrayBuffer {
  return parquetWriteBuffer({
    columnData: COLUMNS.map((name) => ({ name, data: rows.map((r) => r[name]) })),
    schema: ROW_SCHEMA as unknown as Parameters<typeof parquetWriteBuffer>[0]['schema'],
  });
}

export function writeQuestionsParquet(file: string, rows: QuestionRow[]): void {
  writeFileSync(file, Buffer.from(questionsParquet(rows)));
}
