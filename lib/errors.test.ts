import { describe, expect, it } from 'vitest';
import { cliErrorReport, NetplumbError, reportCliError } from './errors.js';
import { formatConfigPath, formatIssues } from './config-path.js';

describe('NetplumbError', () => {
  it('keeps its code, exit code and cause', () => {
    const cause = new Error('low');
    const e = new NetplumbError('config-invalid', 'resourceList[0]: bad', { exitCode: 2, cause });
    expect([e.code, e.exitCode, e.cause, e instanceof Error]).toEqual(['config-invalid', 2, cause, true]);
  });
  it('maps our errors to their exit code and anything else to internal/1 with its stack', () => {
    expect(cliErrorReport(new NetplumbError('x', 'msg', { exitCode: 2 }))).toEqual({
      message: 'msg',
      code: 'x',
      exitCode: 2,
    });
    const r = cliErrorReport(new TypeError('boom'));
    expect(r.code).toBe('internal');
    expect(r.exitCode).toBe(1);
    expect(r.message).toMatch(/^internal error: TypeError: boom/);
  });
  it('prints for humans or as one JSON line', () => {
    let out = '';
    const stderr = { write: (s: string) => ((out += s), true) };
    expect(reportCliError(new NetplumbError('c', 'm', { exitCode: 2 }), stderr)).toBe(2);
    expect(out).toBe('netplumb: m\n');
    out = '';
    reportCliError(new NetplumbError('c', 'm'), stderr, true);
    expect(JSON.parse(out)).toEqual({ error: { message: 'm', code: 'c', exitCode: 1 } });
  });
});

describe('formatConfigPath', () => {
  it('writes keys with dots and indexes in brackets', () => {
    expect(formatConfigPath(['resourceList', 1, 'selectors', 0, 'pfNames'])).toBe(
      'resourceList[1].selectors[0].pfNames',
    );
    expect(formatConfigPath([0, 'a'])).toBe('[0].a');
    expect(formatConfigPath([])).toBe('');
  });
});

describe('formatIssues', () => {
  it('prints every issue in the one path syntax, (root) for the document', () => {
    expect(
      formatIssues([
        { path: ['delegates', 0, 'type'], message: 'required' },
        { path: [], message: 'must be an object' },
      ]),
    ).toBe('delegates[0].type: required; (root): must be an object');
    expect(formatIssues([{ path: [1], message: 'x' }], ['resourceList'], '\n')).toBe('resourceList[1]: x');
  });
});
