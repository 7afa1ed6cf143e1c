import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorAgent, pemCertificates, trustedByAnchor } from './tls-anchor.js';
import type { TrustPath } from './tls-anchor.js';

const run = promisify(execFile);
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
let dir = '';

const file = (name: string): string => path.join(dir, name);
const pem = (name: string): Promise<Buffer> => readFile(file(name));

/** A self-signed CA (openssl's v3_ca: CA:TRUE), with extra -addext lines. */
async function ca(name: string, ...addext: string[]): Promise<void> {
  const ext = addext.flatMap((e) => ['-addext', e]);
  await run(
    'openssl',
    ['req', '-x509', ...EC, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`)].concat(
      ['-days', '1', '-subj', `/CN=${name}`],
      ext,
    ),
  );
}

/** A certificate for `name` signed by `issuer`, with the given extensions. */
async function signed(name: string, issuer: string, ext: string): Promise<void> {
  await run('openssl', [
    'req',
    ...EC,
    '-keyout',
    file(`${name}.key`),
    '-out',
    file(`${name}.csr`),
    '-subj',
    `/CN=${name}`,
  ]);
  await writeFile(file(`${name}.ext`), ext);
  await run(
    'openssl',
    ['x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${issuer}.crt`)]
      .concat(['-CAkey', file(`${issuer}.key`), '-CAcreateserial', '-out', file(`${name}.crt`)])
      .concat(['-days', '1', '-extfile', file(`${name}.ext`)]),
  );
}

const SERVER = 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-tls-anchor-'));
  await ca('root');
  await ca('other');
  await ca('constrained', 'nameConstraints=permitted;IP:127.0.0.0/255.0.0.0');
  await ca('self', 'subjectAltName=IP:127.0.0.1');
  await signed('leaf', 'root', SERVER);
  await signed('client-only', 'root', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=clientAuth\n');
  await signed('elsewhere', 'root', 'subjectAltName=DNS:api.example\nextendedKeyUsage=serverAuth\n');
  await signed('mid', 'root', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  await signed('deep', 'mid', SERVER);
  await signed('not-a-ca', 'root', 'basicConstraints=critical,CA:FALSE\n');
  await signed('under-leaf', 'not-a-ca', SERVER);
  await signed('in-range', 'constrained', SERVER);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function x509(name: string): Promise<X509Certificate> {
  return new X509Certificate(await pem(`${name}.crt`));
}

describe('trustedByAnchor (the only case checked in JS: a direct path to a kubeconfig CA)', () => {
  // Taken after the certificates exist: their notBefore is the second they were made, so a time
  // taken while the file is collected (before beforeAll) can be earlier than that on a slow machine.
  let now = new Date(0);
  beforeAll(() => {
    now = new Date();
  });

  it('accepts a server certificate signed directly by the CA, and the CA itself served as its own', async () => {
    expect(trustedByAnchor(await x509('leaf'), [await x509('root')], '127.0.0.1', now)).toBe(true);
    expect(trustedByAnchor(await x509('self'), [await x509('self')], '127.0.0.1', now)).toBe(true);
    // The CA among others in a bundle.
    const bundle = pemCertificates(Buffer.concat([await pem('other.crt'), await pem('root.crt')]));
    expect(bundle).toHaveLength(2);
    expect(trustedByAnchor(await x509('leaf'), bundle, '127.0.0.1', now)).toBe(true);
  });

  it('leaves everything else to OpenSSL: another CA, another name, a client-only EKU, expiry, chains, constraints', async () => {
    const root = [await x509('root')];
    expect(trustedByAnchor(await x509('leaf'), [await x509('other')], '127.0.0.1', now)).toBe(false);
    expect(trustedByAnchor(await x509('leaf'), root, '127.0.0.2', now)).toBe(false);
    expect(trustedByAnchor(await x509('elsewhere'), root, '127.0.0.1', now)).toBe(false);
    expect(trustedByAnchor(await x509('client-only'), root, '127.0.0.1', now)).toBe(false);
    const later = new Date(Date.now() + 3 * 86_400_000);
    expect(trustedByAnchor(await x509('leaf'), root, '127.0.0.1', later)).toBe(false);
    const before = new Date(Date.now() - 3 * 86_400_000);
    expect(trustedByAnchor(await x509('leaf'), root, '127.0.0.1', before)).toBe(false);
    // Signed by an intermediate: no direct path (OpenSSL builds the chain).
    expect(trustedByAnchor(await x509('deep'), root, '127.0.0.1', now)).toBe(false);
    // An issuer that is not a CA is never an anchor here, even when trusted as one.
    expect(trustedByAnchor(await x509('under-leaf'), [await x509('not-a-ca')], '127.0.0.1', now)).toBe(false);
    // A CA with name constraints: OpenSSL applies them.
    expect(trustedByAnchor(await x509('in-range'), [await x509('constrained')], '127.0.0.1', now)).toBe(
      false,
    );
  });
});

/** An HTTPS server presenting `chain` (leaf first); counts the requests it got. */
async function serve(
  key: string,
  chain: string[],
): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const cert = Buffer.concat(await Promise.all(chain.map((c) => pem(`${c}.crt`))));
  const server = https.createServer({ key: await pem(`${key}.key`), cert }, (_req, res) => {
    requests++;
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${String(port)}/`,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

async function get(url: string, agent: https.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          resolve(body);
        });
      })
      .on('error', reject);
  });
}

describe('anchorAgent', () => {
  async function through(key: string, chain: string[], caName: string) {
    const s = await serve(key, chain);
    const paths: TrustPath[] = [];
    const agent = anchorAgent({ ca: await pem(`${caName}.crt`) }, { keepAlive: true, maxSockets: 1 }, (p) =>
      paths.push(p),
    );
    try {
      const body = await get(s.url, agent).catch((err: unknown) => err);
      return { body, paths, requests: s.requests() };
    } finally {
      agent.destroy();
      await s.close();
    }
  }

  it('trusts a directly signed server without OpenSSL chain building, and reuses the connection', async () => {
    const s = await serve('leaf', ['leaf']);
    const paths: TrustPath[] = [];
    const agent = anchorAgent({ ca: await pem('root.crt') }, { keepAlive: true, maxSockets: 1 }, (p) =>
      paths.push(p),
    );
    try {
      expect(await get(s.url, agent)).toBe('{"ok":true}');
      expect(await get(s.url, agent)).toBe('{"ok":true}');
      expect(paths).toEqual(['anchor']);
    } finally {
      agent.destroy();
      await s.close();
    }
  });

  it('falls back to Node’s verification for a chain through an intermediate, and it passes', async () => {
    const r = await through('deep', ['deep', 'mid'], 'root');
    expect(r.body).toBe('{"ok":true}');
    expect(r.paths).toEqual(['openssl']);
  });

  it('falls back for a CA with name constraints, which OpenSSL then applies (127.0.0.1 is in range)', async () => {
    const r = await through('in-range', ['in-range'], 'constrained');
    expect(r.body).toBe('{"ok":true}');
    expect(r.paths).toEqual(['openssl']);
  });

  it('refuses a server another CA signed, a wrong name and a client-only certificate, before any request byte', async () => {
    for (const [key, caName, message] of [
      ['leaf', 'other', /unable to get local issuer|self.signed|unable to verify/i],
      ['elsewhere', 'root', /IP: 127\.0\.0\.1 is not in the cert's list/],
      ['client-only', 'root', /unsuitable certificate purpose/i],
    ] as const) {
      const r = await through(key, [key], caName);
      expect(r.body).toBeInstanceOf(Error);
      expect((r.body as Error).message).toMatch(message);
      expect(r.paths).toEqual([]);
      expect(r.requests).toBe(0);
    }
  });
});
