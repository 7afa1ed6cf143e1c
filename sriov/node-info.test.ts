// The pure parsers behind the kernel facts: CPU lists and kernel command line parameters.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cmdlineParam, formatCpuList, parseCpuList } from './node-info.js';

describe('CPU lists', () => {
  it('parses the kernel format and rejects anything else', () => {
    expect(parseCpuList('0-3,8,10-11')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList('3-1')).toBeNull();
    expect(parseCpuList('a-b')).toBeNull();
    expect(parseCpuList('0-99999')).toBeNull();
  });

  it('format then parse gives the sorted set back', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 511 }), { maxLength: 64 }), (cpus) => {
        const sorted = [...cpus].sort((a, b) => a - b);
        expect(parseCpuList(formatCpuList(cpus))).toEqual(sorted);
      }),
    );
  });
});

describe('kernel command line', () => {
  it('takes the last value of a key and ignores init arguments after --', () => {
    const line = 'BOOT_IMAGE=/vmlinuz iommu=off intel_iommu=on iommu=pt -- iommu=nope';
    expect(cmdlineParam(line, 'iommu')).toBe('pt');
    expect(cmdlineParam(line, 'intel_iommu')).toBe('on');
    expect(cmdlineParam(line, 'amd_iommu')).toBeNull();
  });
});
