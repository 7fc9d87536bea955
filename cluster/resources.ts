/** What a node announces when it joins: CPU cores, memory, GPUs (nvidia-smi or DR_GPUS), labels, version. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';

export interface Gpu {
  id: string;
  name?: string;
  memoryMiB?: number;
}

export interface Resources {
  cpus: number;
  memoryBytes: number;
  gpus: Gpu[];
  labels: Record<string, string>;
  version: string;
  hostname: string;
  pid: number;
}

const pkgVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** `gpuIds` (from DR_GPUS / --gpus) wins over probing; nvidia-smi missing or failing means no GPUs. */
export async function detectResources(opts: {
  labels?: Record<string, string>;
  gpuIds?: string[];
}): Promise<Resources> {
  const gpus = opts.gpuIds !== undefined ? opts.gpuIds.map((id) => ({ id })) : await probeNvidiaSmi();
  return {
    cpus: cpus().length,
    memoryBytes: totalmem(),
    gpus,
    labels: opts.labels ?? {},
    version: pkgVersion,
    hostname: hostname(),
    pid: process.pid,
  };
}

/** True when the node offers `resource`: 'gpu' means at least one GPU; anything else is a label key. */
export function offers(r: Resources, resource: string): boolean {
  return resource === 'gpu' ? r.gpus.length > 0 : Object.hasOwn(r.labels, resource);
}

function probeNvidiaSmi(): Promise<Gpu[]> {
  return new Promise((resolve) => {
    execFile(
      'nvidia-smi',
      ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: 5_000 },
      (err, stdout) => {
        if (err !== null) {
          resolve([]);
          return;
        }
        resolve(
          stdout
            .split('\n')
            .map((line) => line.split(',').map((f) => f.trim()))
            .filter((f) => f[0] !== undefined && f[0] !== '')
            .map(([id, name, mem]) => ({ id: id as string, name, memoryMiB: Number(mem) })),
        );
      },
    );
  });
}
