import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { UrlPolicy, type Lookup } from './url-safety.ts';

function lookupWith(policy: UrlPolicy, addresses: LookupAddress[]): Lookup {
  return policy.lookup(((_host: string, _opts: unknown, cb: (err: null, a: LookupAddress[]) => void) =>
    cb(null, addresses)) as never);
}

function runLookup(lookup: Lookup, all: boolean): Promise<unknown> {
  return new Promise((resolve, reject) =>
    lookup('example.test', { all }, (err, address) => (err === null ? resolve(address) : reject(err))),
  );
}

describe('UrlPolicy.checkUrl', () => {
  const policy = new UrlPolicy();

  it.each([
    'file:///etc/passwd',
    'ftp://example.org/x',
    'javascript:alert(1)',
    'data:text/html,hi',
    'gopher://x',
  ])('refuses the non-http scheme of %s', (url) => {
    expect(() => policy.checkUrl(url)).toThrow(expect.objectContaining({ code: 'BROWSE_BLOCKED_SCHEME' }));
  });

  it.each([
    'http://127.0.0.1/',
    'http://127.1/',
    'http://0x7f000001/',
    'http://2130706433/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.1.2.3/',
    'http://192.168.0.1/',
    'http://172.16.5.4/',
    'http://0.0.0.0/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[fe80::1]/',
    'http://224.0.0.1/',
    'http://100.64.0.1/',
    'http://[fd00::1]/',
  ])('refuses the private or special address literal in %s', (url) => {
    expect(() => policy.checkUrl(url)).toThrow(expect.objectContaining({ code: 'BROWSE_BLOCKED_ADDRESS' }));
  });

  it('accepts public http(s) URLs and refuses malformed ones and embedded credentials', () => {
    expect(policy.checkUrl('https://93.184.216.34/page').hostname).toBe('93.184.216.34');
    expect(policy.checkUrl('https://example.org/a?b=c').href).toBe('https://example.org/a?b=c');
    expect(() => policy.checkUrl('not a url')).toThrow(expect.objectContaining({ code: 'BROWSE_BAD_URL' }));
    expect(() => policy.checkUrl('http://user:pw@example.org/')).toThrow(
      expect.objectContaining({ code: 'BROWSE_BAD_URL' }),
    );
  });

  it('lets allow-listed networks and hosts through', () => {
    const sandbox = new UrlPolicy({ allowCidrs: ['127.0.0.1/32'], allowHosts: ['Sandbox.Local'] });

    expect(sandbox.checkUrl('http://127.0.0.1:8080/x').port).toBe('8080');
    expect(() => sandbox.checkUrl('http://127.0.0.2/')).toThrow(
      expect.objectContaining({ code: 'BROWSE_BLOCKED_ADDRESS' }),
    );
    expect(() => sandbox.checkAddress('10.0.0.1', 'sandbox.local')).not.toThrow();
  });

  it('rejects a malformed allow-list entry with BROWSE_CONFIG', () => {
    expect(() => new UrlPolicy({ allowCidrs: ['localhost'] })).toThrow(
      expect.objectContaining({ code: 'BROWSE_CONFIG' }),
    );
  });
});

describe('UrlPolicy.lookup (the address check at connect time)', () => {
  const policy = new UrlPolicy();

  it('hands the connection only the public addresses a name resolves to', async () => {
    const lookup = lookupWith(policy, [
      { address: '10.0.0.5', family: 4 },
      { address: '93.184.216.34', family: 4 },
    ]);

    expect(await runLookup(lookup, true)).toEqual([{ address: '93.184.216.34', family: 4 }]);
    expect(await runLookup(lookup, false)).toBe('93.184.216.34');
  });

  it('fails when a name resolves only to private addresses (DNS rebinding to the metadata service)', async () => {
    const lookup = lookupWith(policy, [{ address: '169.254.169.254', family: 4 }]);

    await expect(runLookup(lookup, false)).rejects.toMatchObject({ code: 'BROWSE_BLOCKED_ADDRESS' });
  });
});
