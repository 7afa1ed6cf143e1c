import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CniError } from './errors.js';
import { cniArg, formatCniArgs, parseCniArgs, parseCniEnv } from './env.js';

const base = {
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};

describe('parseCniEnv', () => {
  it('reads an ADD invocation', () => {
    const env = parseCniEnv({ ...base, CNI_COMMAND: 'ADD', CNI_ARGS: 'K8S_POD_NAME=p;IgnoreUnknown=true' });
    expect(env).toEqual({
      command: 'ADD',
      containerId: 'abc123',
      netns: '/run/netns/x',
      ifname: 'eth0',
      args: [
        ['K8S_POD_NAME', 'p'],
        ['IgnoreUnknown', 'true'],
      ],
      path: ['/opt/cni/bin'],
    });
  });

  it.each([
    ['ADD', 'CNI_NETNS', /\[CNI_NETNS\] missing for ADD/],
    ['CHECK', 'CNI_IFNAME', /\[CNI_IFNAME\] missing for CHECK/],
    ['DEL', 'CNI_CONTAINERID', /\[CNI_CONTAINERID\] missing for DEL/],
    ['GC', 'CNI_PATH', /\[CNI_PATH\] missing for GC/],
  ])('%s without %s is error 4 naming the variable', (command, drop, msg) => {
    const env = Object.fromEntries(
      Object.entries({ ...base, CNI_COMMAND: command }).filter(([k]) => k !== drop),
    );
    expect(() => parseCniEnv(env)).toThrow(msg);
    try {
      parseCniEnv(env);
    } catch (err) {
      expect((err as CniError).code).toBe(4);
    }
  });

  it('lets DEL run without CNI_NETNS (the netns may be gone)', () => {
    expect(
      parseCniEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }).netns,
    ).toBeUndefined();
  });

  it('needs only CNI_COMMAND for VERSION and STATUS', () => {
    expect(parseCniEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
    expect(parseCniEnv({ CNI_COMMAND: 'STATUS' }).command).toBe('STATUS');
  });

  it('rejects an unknown command, a bad container ID and a bad interface name', () => {
    expect(() => parseCniEnv({ CNI_COMMAND: 'UP' })).toThrow(/unknown CNI_COMMAND "UP"/);
    expect(() => parseCniEnv({ ...base, CNI_COMMAND: 'ADD', CNI_CONTAINERID: '-x' })).toThrow(
      /CNI_CONTAINERID/,
    );
    expect(() => parseCniEnv({ ...base, CNI_COMMAND: 'ADD', CNI_IFNAME: 'a-very-long-ifname' })).toThrow(
      /CNI_IFNAME "a-very-long-ifname" is longer than 15/,
    );
  });
});

describe('CNI_ARGS', () => {
  it('round-trips any list of pairs without ";" in keys or values', () => {
    const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/);
    const value = fc.stringMatching(/^[^;]{0,12}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 6 }), (pairs) => {
        expect(parseCniArgs(formatCniArgs(pairs))).toEqual(pairs.filter(([k, v]) => `${k}=${v}` !== ''));
      }),
    );
  });

  it('rejects an item without "=" and returns the last value of a repeated key', () => {
    expect(() => parseCniArgs('A=1;oops')).toThrow(/invalid pair "oops"/);
    expect(cniArg(parseCniArgs('A=1;A=2;IP=10.0.0.1/24'), 'A')).toBe('2');
  });
});
