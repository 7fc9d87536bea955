/**
 * Writing files so that they survive a crash once the call returns: `writeDurably` writes a file whole and
 * fsyncs it; `writeFileAtomically` does so under a temporary name and renames it into place, so a reader
 * sees the old file or the new one, never half of one. Folders that must appear whole (checkpoints,
 * exported models) are written the same way, a temporary folder renamed into place.
 */
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function writeDurably(file: string, bytes: Uint8Array | string): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomically(file: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeDurably(tmp, bytes);
  await rename(tmp, file);
}
