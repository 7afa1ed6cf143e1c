// `netplumb webhook certs` and `netplumb webhook serve` as real processes (the composition root).
// Each process starts through tsx (seconds on a loaded machine): the tests get a long timeout.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer } from '../sim/apiserver.js';
import type { FakeApiServer } from '../sim/apiserver.js';
import { nodeArgsFor } from '../test/support/bin.js';
import { httpsRequest } from '../test/support/webhook.js';

const run = promisify(execFile);
const CLI = nodeArgsFor('bin/netplumb.ts');
const SNI = 'netplumb-webhook.netplumb.svc';

let dir: string;
let api: FakeApiServer;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'netplumb-webhook-cli-'));
  api = await startFakeApiServer();
  api.addNad('default', 'sriov-vlan210', {}, { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/vf' });
});
afterAll(async () => {
  await api.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('netplumb webhook (CLI)', () => {
  it('certs --out-dir creates a bundle once, then keeps it', async () => {
    const tls = path.join(dir, 'tls');
    const args = [...CLI, 'webhook', 'certs', '--out-dir', tls, '--namespace', 'netplumb', '--json'];
    const first = JSON.parse((await run(process.execPath, args)).stdout) as {
      renewed: boolean;
      caBundle: string;
    };
    expect(first.renewed).toBe(true);
    expect(Buffer.from(first.caBundle, 'base64').toString()).toBe(
      await readFile(path.join(tls, 'ca.crt'), 'utf8'),
    );
    const second = JSON.parse((await run(process.execPath, args)).stdout) as { renewed: boolean };
    expect(second.renewed).toBe(false);
  }, 180_000);

  it('serve answers an AdmissionReview over TLS until SIGTERM, then exits 0', async () => {
    const tls = path.join(dir, 'tls');
    const kubeconfig = await api.writeKubeconfig(path.join(dir, 'kubeconfig'));
    const child = spawn(
      process.execPath,
      [
        ...CLI,
        'webhook',
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--tls-cert-file',
        path.join(tls, 'tls.crt'),
        '--tls-key-file',
        path.join(tls, 'tls.key'),
        '--kubeconfig',
        kubeconfig,
        // The fake API server has no ConfigMaps (the switches watch is tested in control-switches.test.ts).
        '--control-switches-configmap',
        '',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let buf = '';
        child.stderr.on('data', (c: Buffer) => {
          buf += c.toString();
          const m = /"port":(\d+),"msg":"webhook serving"/.exec(buf);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => {
          reject(new Error(`exited ${String(code)}: ${buf}`));
        });
      });
      const ca = await readFile(path.join(tls, 'ca.crt'), 'utf8');
      const get = (p: string) => httpsRequest(port, { ca, servername: SNI, path: p });
      // Ready once the NAD informer (list + watch of the API server) has synced.
      // Up to 60 s by the clock (was 200 tries, ~10 s): the informer lists from this loaded process.
      for (const end = Date.now() + 60_000; (await get('/readyz')).status !== 200 && Date.now() < end;) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await get('/readyz')).status).toBe(200);
      const review = JSON.parse(
        await readFile(path.join(import.meta.dirname, 'testdata', 'admission-review-v1.json'), 'utf8'),
      ) as unknown;
      const answer = await httpsRequest(port, { ca, servername: SNI, body: JSON.stringify(review) });
      const out = JSON.parse(answer.body) as { response: { allowed: boolean; patch: string } };
      expect(out.response.allowed).toBe(true);
      expect(Buffer.from(out.response.patch, 'base64').toString()).toContain('"intel.com/vf":"2"');
      // Served from the informer cache: no GET of the NAD itself.
      expect((await get('/metrics')).body).toMatch(/netplumb_webhook_nad_lookups_total\{result="hit"\} 1\n/);
      expect(api.requests.filter((r) => r.path.endsWith('/sriov-vlan210'))).toEqual([]);
      const exited = new Promise<number | null>((r) => child.on('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 180_000);
});
