import { describe, expect, it } from 'vitest';
import { DEFAULT_CHROMIUM, planBrowser, type BrowserHost } from './ensure-browser.ts';

const host = (over: Partial<BrowserHost> = {}): BrowserHost => ({
  path: DEFAULT_CHROMIUM,
  executable: () => false,
  platform: 'linux',
  isRoot: true,
  has: (c) => c === 'apt-get',
  ...over,
});

describe('the browser npm test needs', () => {
  it('is used as it is when it is there', () => {
    expect(planBrowser(host({ executable: (p) => p === DEFAULT_CHROMIUM }))).toEqual({
      kind: 'ready',
      path: DEFAULT_CHROMIUM,
    });
  });

  it("is installed from Debian's chromium package by root on an apt system", () => {
    const plan = planBrowser(host());

    expect(plan.kind).toBe('install');
    expect(plan.kind === 'install' && plan.command.join(' ')).toMatch(/apt-get install -y .*chromium$/);
  });

  it('is explained, with the command to run, where it cannot be installed', () => {
    const plan = planBrowser(host({ isRoot: false, has: () => false }));

    expect(plan).toMatchObject({
      kind: 'missing',
      message: expect.stringContaining('sudo apt-get install chromium'),
    });
    expect(plan.kind === 'missing' && plan.message).toMatch(/DR_CHROMIUM_PATH/);
  });

  it('is never installed over a DR_CHROMIUM_PATH that points nowhere', () => {
    expect(planBrowser(host({ path: '/opt/none/chrome' }))).toMatchObject({
      kind: 'missing',
      message: expect.stringContaining('DR_CHROMIUM_PATH=/opt/none/chrome is not an executable file'),
    });
  });
});
