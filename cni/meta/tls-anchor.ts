// TLS to the API server for a short-lived process (the thin netplumb-cni, one process per CNI call).
// Node 20 builds its store of 144 bundled root certificates the first time a SecureContext is given
// a CA (OpenSSL parses every one: 25-32 ms, measured in `bench -- cni-pod`'s thin mode), even when
// the kubeconfig's CA replaces them. A long-lived process pays that once; a CNI call pays it on
// every ADD. So the connection here is made with an empty trust store, and the one case that needs
// no chain building is checked in JS with OpenSSL's own primitives (X509_check_issued, X509_verify):
// the server's certificate is a kubeconfig CA itself, or is signed directly by one. Every other
// case (an intermediate, a CA with name constraints, a weak signature or key, an EKU that is not
// serverAuth, a name mismatch) reconnects with Node's full verification against the same CA, which
// either accepts or gives the usual error. The JS check can only accept, never weaken, a verdict.
import { X509Certificate } from 'node:crypto';
import type https from 'node:https';
import type { RequestOptions } from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { httpsModule } from '../../lib/lazy-builtins.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const ANY_EKU = '2.5.29.37.0';
// DER of the OID of the nameConstraints extension (2.5.29.30): a CA carrying it goes to OpenSSL.
const NAME_CONSTRAINTS = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x1e]);
// DER of signature algorithm OIDs OpenSSL's default security level refuses or that nobody should
// accept in a chain: md5WithRSA, sha1WithRSA, ecdsa-with-SHA1, dsa-with-SHA1.
const WEAK_SIGNATURES = [
  '06092a864886f70d010104',
  '06092a864886f70d010105',
  '06072a8648ce3d0401',
  '06072a8648ce380403',
].map((h) => Buffer.from(h, 'hex'));
const MIN_RSA_BITS = 2048;

/** The certificates of a PEM bundle (a kubeconfig's CA data may hold several); unparsable ones are skipped. */
export function pemCertificates(pem: Buffer | string): X509Certificate[] {
  const blocks = pem.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      // not a certificate OpenSSL can read: the full verification will say so
    }
  }
  return out;
}

function current(c: X509Certificate, now: Date): boolean {
  const t = now.getTime();
  return new Date(c.validFrom).getTime() <= t && t <= new Date(c.validTo).getTime();
}

/** No extended key usage, or one that allows a TLS server (OpenSSL's "sslserver" purpose). */
function serverUsage(c: X509Certificate): boolean {
  // undefined when the certificate has no extendedKeyUsage (@types/node says string[]).
  const eku = c.keyUsage as readonly string[] | undefined;
  return eku === undefined || eku.includes(SERVER_AUTH) || eku.includes(ANY_EKU);
}

function strongEnough(c: X509Certificate): boolean {
  if (WEAK_SIGNATURES.some((oid) => c.raw.includes(oid))) return false;
  const d = c.publicKey.asymmetricKeyDetails;
  return c.publicKey.asymmetricKeyType !== 'rsa' || (d?.modulusLength ?? 0) >= MIN_RSA_BITS;
}

/**
 * True when `leaf` is trusted for `host` at `now` through a direct path to one of `anchors`: the
 * leaf is an anchor, or an anchor that is a CA (basicConstraints CA:TRUE, keyCertSign if it has a
 * keyUsage, no name constraints) issued and signed it. Both current, both allowed for a TLS server,
 * the leaf's signature and key strong, and `host` in its names (tls.checkServerIdentity, as Node
 * checks it). False means "not shown here", not "untrusted": the caller asks OpenSSL.
 */
export function trustedByAnchor(
  leaf: X509Certificate,
  anchors: readonly X509Certificate[],
  host: string,
  now: Date,
): boolean {
  if (!current(leaf, now) || !serverUsage(leaf) || !strongEnough(leaf)) return false;
  if (tls.checkServerIdentity(host, leaf.toLegacyObject()) !== undefined) return false;
  return anchors.some(
    (a) =>
      a.fingerprint256 === leaf.fingerprint256 ||
      (a.ca &&
        current(a, now) &&
        serverUsage(a) &&
        !a.raw.includes(NAME_CONSTRAINTS) &&
        // X509_check_issued: names, key identifiers, and keyCertSign when the CA has a keyUsage.
        leaf.checkIssued(a) &&
        leaf.verify(a.publicKey)),
  );
}

export interface AnchorTls {
  /** The kubeconfig's CA, client certificate and key (PEM). */
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly servername?: string;
}

/** Which way a connection was trusted (for tests and debug logs). */
export type TrustPath = 'anchor' | 'openssl';

const CONNECT_TIMEOUT_MS = 30_000;

type Done = (err: Error | null, s?: Duplex) => void;

/** A TLS connection that settles once: `onSecure` on the handshake, `done(err)` on an error or a timeout. */
function connect(opts: tls.ConnectionOptions, done: Done, onSecure: (s: tls.TLSSocket) => void): void {
  const s = tls.connect(opts);
  const onError = (err: Error): void => {
    done(err);
  };
  s.once('error', onError);
  s.setTimeout(CONNECT_TIMEOUT_MS, () => {
    s.destroy(Object.assign(new Error('TLS connection to the API server timed out'), { code: 'ETIMEDOUT' }));
  });
  s.once('secureConnect', () => {
    s.off('error', onError);
    s.setTimeout(0);
    onSecure(s);
  });
}

/** Where to connect: host, port, and the TLS server name when it is not the host. */
export interface AnchorTarget {
  readonly host: string;
  readonly port: number;
  readonly servername?: string;
}

/**
 * Opens TLS connections trusted by trustedByAnchor, else by Node's full verification (a second
 * connection; the bundled roots are parsed only then). The promise settles once the server is
 * trusted (or refused): nothing can be written to it before.
 */
export function anchoredConnector(
  o: AnchorTls,
  onTrust: (path: TrustPath) => void = () => undefined,
): (target: AnchorTarget) => Promise<tls.TLSSocket> {
  const anchors = pemCertificates(o.ca);
  const own = { ...(o.cert !== undefined && { cert: o.cert }), ...(o.key !== undefined && { key: o.key }) };
  // `ca: []` keeps configSecureContext from loading the bundled roots (it does for no `ca` at all).
  const quick = tls.createSecureContext({ ca: [], ...own });
  let full: tls.SecureContext | undefined;
  return (target) =>
    new Promise((resolve, reject) => {
      const servername = target.servername ?? o.servername ?? '';
      const base: tls.ConnectionOptions = {
        host: target.host,
        port: target.port,
        ...(servername !== '' && net.isIP(servername) === 0 && { servername }),
      };
      // The name the certificate must carry, as Node's tls.connect picks it.
      const name = servername !== '' ? servername : target.host;
      const done: Done = (err, s) => {
        if (err !== null) reject(err);
        else resolve(s as tls.TLSSocket);
      };
      connect({ ...base, secureContext: quick, rejectUnauthorized: false }, done, (s) => {
        const leaf = s.getPeerX509Certificate();
        if (leaf !== undefined && trustedByAnchor(leaf, anchors, name, new Date())) {
          onTrust('anchor');
          done(null, s);
          return;
        }
        s.destroy();
        full ??= tls.createSecureContext({ ca: o.ca, ...own });
        connect({ ...base, secureContext: full, rejectUnauthorized: true }, done, (verified) => {
          onTrust('openssl');
          done(null, verified);
        });
      });
    });
}

/**
 * A keep-alive https.Agent whose connections are opened by anchoredConnector: no request byte is
 * written before the server is trusted (the agent hands the socket to the request only afterwards).
 */
export function anchorAgent(
  o: AnchorTls,
  agentOptions: https.AgentOptions,
  onTrust: (path: TrustPath) => void = () => undefined,
): https.Agent {
  const open = anchoredConnector(o, onTrust);
  // node:https loads only here: anchoredConnector alone (kube-wire's transport) does not need it.
  const agent = new (httpsModule().Agent)({
    ...agentOptions,
    ...(o.servername !== undefined && { servername: o.servername }),
  });
  agent.createConnection = (options: RequestOptions, done: Done): undefined => {
    const servername = options.servername ?? '';
    open({
      host: options.host ?? 'localhost',
      port: Number(options.port ?? 443),
      ...(servername !== '' && { servername }),
    }).then(
      (s) => {
        done(null, s);
      },
      (err: unknown) => {
        done(err instanceof Error ? err : new Error(String(err)));
      },
    );
    return undefined;
  };
  return agent;
}
