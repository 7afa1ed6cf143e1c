import { describe, expect, it } from 'vitest';
import { CniError, CniErrorCode } from '../errors.js';
import { metaConfProblems, parseMetaConf } from './config.js';

describe('metaConfProblems', () => {
  it('lists every mistyped key as `path: message`, in English', () => {
    expect(
      metaConfProblems({
        name: 3,
        delegates: [{ type: 'x' }, 'flannel'],
        logToStderr: 'no',
        runtimeConfig: [],
      }),
    ).toEqual([
      'name: Invalid input: expected string, received number',
      'delegates[1]: Invalid input: expected record, received string',
      'logToStderr: Invalid input: expected boolean, received string',
      'runtimeConfig: Invalid input: expected record, received array',
    ]);
  });

  it('has nothing to say about a valid config with keys of its own', () => {
    expect(metaConfProblems({ clusterNetwork: 'flannel', defaultNetworks: null, someVendorKey: 1 })).toEqual(
      [],
    );
  });
});

describe('parseMetaConf', () => {
  it('refuses a mistyped key with code 7, naming the key and what it should be', () => {
    const err = (() => {
      try {
        return parseMetaConf({ clusterNetwork: 'x', systemNamespaces: 'kube-system' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(CniErrorCode.InvalidNetworkConfig);
    expect((err as CniError).message).toBe(
      'netplumb config: systemNamespaces: Invalid input: expected array, received string',
    );
  });
});
