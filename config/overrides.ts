/**
 * Hydra-style `--set key.path=value` overrides, shared by the cluster file (`dr head --set`) and train configs
 * (`dr submit train --set`): the value is read as YAML, so numbers, booleans, [lists] and {maps} keep their
 * type, and missing maps on the path are created.
 */
import { parse as parseYaml } from 'yaml';
import { DrError } from './errors.ts';

/** An override whose path runs through a value that is not a map. */
export class OverridePathError extends DrError {
  constructor(
    readonly set: string,
    /** Dotted path of the value in the way. */
    readonly at: string,
    readonly found: unknown,
  ) {
    super(
      'CONFIG_INVALID',
      `--set ${set} reaches into ${at}, which is ${JSON.stringify(found)}, not a map; set the whole value instead, or check the path`,
    );
  }
}

/** Parses `a.b.c=value`. */
export function parseSet(set: string): { path: string[]; value: unknown } {
  const eq = set.indexOf('=');
  const path = eq <= 0 ? [] : set.slice(0, eq).split('.');
  if (path.length === 0 || path.some((p) => p === '')) {
    throw new DrError(
      'CONFIG_INVALID',
      `--set '${set}' is not KEY.PATH=VALUE. Fix: write it like --set search.shards=4`,
    );
  }
  const text = set.slice(eq + 1);
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch {
    value = text;
  }
  return { path, value: value === null && text !== 'null' ? text : value };
}

/** Applies one override to `doc` in place. */
export function applySet(doc: Record<string, unknown>, set: string): void {
  const { path, value } = parseSet(set);
  let at: Record<string, unknown> = doc;
  for (const [i, key] of path.slice(0, -1).entries()) {
    const next = at[key];
    if (next === undefined) at[key] = {};
    else if (!isPlainObject(next)) throw new OverridePathError(set, path.slice(0, i + 1).join('.'), next);
    at = at[key] as Record<string, unknown>;
  }
  at[path[path.length - 1] as string] = value;
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
