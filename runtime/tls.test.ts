/** wss between real nodes: a head and a worker serving TLS with a self-signed certificate, and a client that
 * verifies it; a client without the CA is refused by certificate verification. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient } from './client.ts';
import { startHead, startWorker, TEST_TOKEN, type NodeProcess } from './testing/node-process.ts';

let dir: string;
let head: NodeProcess | undefined;
let worker: NodeProcess | undefined;
let port: number;
let tlsArgs: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dr-tls-'));
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  tlsArgs = ['--tls-cert', cert, '--tls-key', key, '--tls-ca', cert];
  ({ node: head, port } = await startHead(tlsArgs));
  worker = await startWorker(port, 1, tlsArgs);
});

afterAll(async () => {
  await worker?.kill('SIGKILL');
  await head?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('wss', () => {
  it('joins a worker and serves a client over TLS', async () => {
    const client = await connectClient({
      head: `127.0.0.1:${port}`,
      token: TEST_TOKEN,
      tls: { ca: join(dir, 'cert.pem') },
    });
    try {
      await client.spawn({ kind: 'echo', name: 'tls-echo', placement: { kind: 'rank', rank: 1 } });
      expect(await client.ask('tls-echo', { op: 'where' })).toMatchObject({ rank: 1 });
    } finally {
      await client.close();
    }
  });

  it('refuses a client that cannot verify the head certificate', async () => {
    await expect(
      connectClient({ head: `127.0.0.1:${port}`, token: TEST_TOKEN, tls: {} }),
    ).rejects.toMatchObject({
      code: 'CLUSTER_HEAD_UNREACHABLE',
      message: expect.stringMatching(/self-signed certificate/),
    });
  });
});
