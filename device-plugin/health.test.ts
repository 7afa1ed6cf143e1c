import { describe, expect, it } from 'vitest';
import { linkDown } from './health.js';

describe('linkDown', () => {
  it.each([
    [{ operstate: 'up', carrier: true }, false],
    [{ operstate: 'down', carrier: false }, true],
    [{ operstate: 'up', carrier: false }, true],
    [{ operstate: 'lowerlayerdown', carrier: null }, true],
    [{ operstate: 'notpresent', carrier: null }, true],
    // Administratively down: the kernel refuses to report carrier; an unused VF, not a fault.
    [{ operstate: 'down', carrier: null }, false],
    [{ operstate: 'unknown', carrier: null }, false],
    [{ operstate: null, carrier: null }, false],
  ])('%o → %s', (link, down) => {
    expect(linkDown(link)).toBe(down);
  });
});
