import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aboutLine, VERSION } from './version.js';

describe('VERSION', () => {
  it('is package.json version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
    expect(aboutLine('netplumb-cni')).toMatch(/^netplumb-cni 0\.\d+\.\d+ \(netplumb; Node\.js 20\./);
  });
});
