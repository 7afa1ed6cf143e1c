import { describe, expect, it } from 'vitest';
import { CniError } from './errors.js';
import { createPlugin } from './skel.js';
import type { AddCall, DelCall, GcCall } from './skel.js';

function recorder() {
  const calls: { verb: string; call: unknown }[] = [];
  const plugin = createPlugin({
    supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    add(call: AddCall) {
      calls.push({ verb: 'add', call });
      if (call.config['fail'] === true) throw new CniError(7, 'bad "x": use y', { details: 'd' });
      if (call.config['crash'] === true) throw new Error('boom');
      return Promise.resolve({
        interfaces: [{ name: call.ifname, sandbox: call.netns, mtu: 1500 }],
        ips: [{ address: '10.0.0.2/24', interface: 0 }],
        routes: [],
        dns: {},
      });
    },
    del(call: DelCall) {
      calls.push({ verb: 'del', call });
      return Promise.resolve();
    },
    check() {
      calls.push({ verb: 'check', call: null });
      return Promise.resolve();
    },
    gc(call: GcCall) {
      calls.push({ verb: 'gc', call });
      return Promise.resolve();
    },
  });
  return { plugin, calls };
}

const env = (command: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'net1',
  CNI_PATH: '/opt/cni/bin',
});

describe('createPlugin', () => {
  it('answers VERSION itself', async () => {
    const { plugin } = recorder();
    const res = await plugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}' });
    expect(res.exitCode).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      cniVersion: '1.1.0',
      supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
  });

  it('prints the ADD result in the config cniVersion', async () => {
    const { plugin } = recorder();
    const res = await plugin({ env: env('ADD'), stdin: '{"cniVersion":"0.3.1","name":"n","type":"t"}' });
    expect(res.exitCode).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      cniVersion: '0.3.1',
      interfaces: [{ name: 'net1', sandbox: '/run/netns/x' }],
      ips: [{ version: '4', interface: 0, address: '10.0.0.2/24' }],
      dns: {},
    });
  });

  it('turns a CniError into the spec error JSON on stdout with exit 1', async () => {
    const { plugin } = recorder();
    const res = await plugin({
      env: env('ADD'),
      stdin: '{"cniVersion":"1.0.0","name":"n","type":"t","fail":true}',
    });
    expect(res).toEqual({ exitCode: 1, stdout: expect.any(String) as string });
    expect(JSON.parse(res.stdout)).toEqual({
      cniVersion: '1.0.0',
      code: 7,
      msg: 'bad "x": use y',
      details: 'd',
    });
  });

  it('reports a thrown non-CNI error as code 999', async () => {
    const { plugin } = recorder();
    const res = await plugin({
      env: env('ADD'),
      stdin: '{"cniVersion":"1.0.0","name":"n","type":"t","crash":true}',
    });
    expect(JSON.parse(res.stdout)).toMatchObject({ code: 999, msg: 'boom' });
  });

  it('refuses a config version it does not support with code 1', async () => {
    const { plugin, calls } = recorder();
    const res = await plugin({ env: env('ADD'), stdin: '{"cniVersion":"0.2.0","name":"n","type":"t"}' });
    expect(JSON.parse(res.stdout)).toMatchObject({ code: 1 });
    expect(calls).toEqual([]);
  });

  it('reports missing env vars as code 4 and undecodable stdin as code 6', async () => {
    const { plugin } = recorder();
    const missing = await plugin({ env: { CNI_COMMAND: 'ADD' }, stdin: '{"cniVersion":"1.0.0"}' });
    expect(JSON.parse(missing.stdout)).toMatchObject({ code: 4, cniVersion: '1.0.0' });
    const garbage = await plugin({ env: env('ADD'), stdin: '{' });
    expect(JSON.parse(garbage.stdout)).toMatchObject({ code: 6 });
  });

  it('passes DEL without a netns and decodes prevResult', async () => {
    const { plugin, calls } = recorder();
    const stdin = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'n',
      type: 't',
      prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] },
    });
    const res = await plugin({ env: { ...env('DEL'), CNI_NETNS: '' }, stdin });
    expect(res).toEqual({ exitCode: 0, stdout: '' });
    expect(calls[0]?.call).toMatchObject({
      netns: undefined,
      prevResult: { ips: [{ address: '10.0.0.2/24' }] },
    });
  });

  it('refuses CHECK below 0.4.0 and STATUS/GC below 1.1.0; hands GC the valid attachments', async () => {
    const { plugin, calls } = recorder();
    const check = await plugin({ env: env('CHECK'), stdin: '{"cniVersion":"0.3.1","name":"n","type":"t"}' });
    expect(JSON.parse(check.stdout)).toMatchObject({ code: 1 });
    const status = await plugin({
      env: { CNI_COMMAND: 'STATUS' },
      stdin: '{"cniVersion":"1.0.0","name":"n","type":"t"}',
    });
    expect(JSON.parse(status.stdout)).toMatchObject({ code: 1 });
    const okStatus = await plugin({
      env: { CNI_COMMAND: 'STATUS' },
      stdin: '{"cniVersion":"1.1.0","name":"n","type":"t"}',
    });
    expect(okStatus.exitCode).toBe(0);
    const gc = await plugin({
      env: { CNI_COMMAND: 'GC', CNI_PATH: '/bin' },
      stdin: JSON.stringify({
        cniVersion: '1.1.0',
        name: 'n',
        type: 't',
        'cni.dev/valid-attachments': [{ containerID: 'c9', ifname: 'eth0' }],
      }),
    });
    expect(gc.exitCode).toBe(0);
    expect(calls.at(-1)?.call).toMatchObject({ validAttachments: [{ containerId: 'c9', ifname: 'eth0' }] });
  });
});
