/**
 * What the train-job tests stand on: a model with the embedded policy's architecture and reduced vocabulary
 * (its tokenizer files beside it) but seeded random weights, so a whole job runs in seconds; and an actor
 * system with every real kind, search and browse answering from the sandbox world in-process.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActorFactory, ActorSystem } from '../../../runtime/actor.ts';
import { createActorSystem } from '../../../runtime/local-system.ts';
import { saveCheckpoint } from '../../../runtime/model/checkpoint.ts';
import { EMBEDDED_CONFIG, EMBEDDED_DIR } from '../../../runtime/model/embedded.ts';
import { randomCheckpoint } from '../../../runtime/model/testing.ts';
import { sandboxBrowse, sandboxSearch } from '../../jobs/testing/sandbox-tool-kinds.ts';
import { kinds as realKinds } from '../../kinds.ts';

/** Writes the model folder at `dir` and returns it. */
export async function randomEmbeddedModel(dir: string): Promise<string> {
  await saveCheckpoint(dir, randomCheckpoint(EMBEDDED_CONFIG, 3, 0.02));
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    await copyFile(join(EMBEDDED_DIR, f), join(dir, f));
  return dir;
}

/** A local actor system running `search/0` and `browse/0` over the sandbox world. */
export async function sandboxToolSystem(): Promise<ActorSystem> {
  const kinds = new Map<string, ActorFactory<never>>([
    ...realKinds,
    ['search', sandboxSearch],
    ['browse', sandboxBrowse],
  ]);
  const system = createActorSystem({ kinds });
  for (const kind of ['search', 'browse']) await system.spawn({ kind, name: `${kind}/0` });
  return system;
}
