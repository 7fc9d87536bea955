/**
 * Writing files so that they survive a crash once the call returns: `writeDurably` writes a file whole and
 * fsyncs it; `writeFileAtomically` does so under a temporary name and renames it into place, so a reader
 * sees the old file or the new one, never half of one. Folders that must appear whole (checkpoints,
 * exported models) are written the same way, a temporary folder renamed into place.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
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

/** `writeFileAtomically` for callers that must not yield (a journal compacted while it is replayed). */
export function writeFileAtomicallySync(file: string, bytes: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  syncFolder(dirname(file));
}

/** Appends `text` and fsyncs it: on disk, not only in the page cache, when this returns. */
export function appendDurablySync(file: string, text: string): void {
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncs a folder, so that a file created or renamed in it survives a power loss too. */
export function syncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
