// A CA and the webhook's serving certificate, for clusters without cert-manager. Node can parse
// and verify X.509 but not create it: node-forge (no dependencies) builds and signs the
// certificates, the RSA keys come from Node's own crypto. The apiserver verifies the serving
// certificate by its subjectAltNames (<service>.<namespace>.svc), against the caBundle.
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface CertBundle {
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
}

export interface CertRequest {
  readonly service: string;
  readonly namespace: string;
  /** Validity of both certificates. */
  readonly days: number;
  readonly now: Date;
}

/** The names the apiserver (and in-cluster clients) may use for the Service. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

function keyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(pem);
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

function baseCert(publicKey: forge.pki.PublicKey, req: CertRequest, cn: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive 128-bit serial (high bit clear).
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(req.now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(req.now.getTime() + req.days * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  return cert;
}

/** A new CA and a serving certificate for `service.namespace.svc` signed by it. */
export function createCertificates(req: CertRequest): CertBundle {
  const ca = keyPair();
  // Only PrintableString characters: node-forge encodes the CN as one, and Go's crypto/x509 (the
  // API server, kubelet probes) refuses a certificate whose PrintableString holds e.g. "@".
  const caCert = baseCert(ca.publicKey, req, `netplumb-webhook-ca-${Math.floor(req.now.getTime() / 1000)}`);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(ca.privateKey, forge.md.sha256.create());

  const server = keyPair();
  const names = serviceDnsNames(req.service, req.namespace);
  const cert = baseCert(server.publicKey, req, names[2] ?? req.service);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.privateKey, forge.md.sha256.create());
  return {
    caCert: forge.pki.certificateToPem(caCert),
    cert: forge.pki.certificateToPem(cert),
    key: forge.pki.privateKeyToPem(server.privateKey),
  };
}

/** X.680 PrintableString: what node-forge's subject values may hold for Go to parse them. */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Every value of a subject (Node's "CN=a\nO=b" text) is a valid PrintableString. */
function printable(subject: string): boolean {
  return subject.split('\n').every((rdn) => PRINTABLE.test(rdn.slice(rdn.indexOf('=') + 1)));
}

/**
 * Why an existing bundle must be replaced, or undefined when it can stay: it must parse, be
 * issued and signed by its CA, have subjects Go can parse (bundles of earlier versions named the CA
 * `netplumb-webhook-ca@<time>`), name every Service DNS name and be valid `minDays` from `now`.
 */
export function renewalReason(
  bundle: Partial<CertBundle>,
  req: Pick<CertRequest, 'service' | 'namespace' | 'now'>,
  minDays: number,
): string | undefined {
  if (bundle.caCert === undefined || bundle.cert === undefined || bundle.key === undefined) {
    return 'no certificate yet';
  }
  let ca: X509Certificate;
  let cert: X509Certificate;
  try {
    ca = new X509Certificate(bundle.caCert);
    cert = new X509Certificate(bundle.cert);
  } catch (err) {
    return `unreadable certificate: ${(err as Error).message}`;
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not signed by its CA';
  const bad = [ca.subject, cert.subject].find((s) => !printable(s));
  if (bad !== undefined)
    return `subject ${JSON.stringify(bad)} is not a valid PrintableString (Go clients reject it)`;
  try {
    if (!cert.checkPrivateKey(createPrivateKey(bundle.key))) return 'key does not match the certificate';
  } catch (err) {
    return `unreadable key: ${(err as Error).message}`;
  }
  const missing = serviceDnsNames(req.service, req.namespace).filter((n) => cert.checkHost(n) === undefined);
  if (missing.length > 0) return `does not name ${missing.join(', ')}`;
  const left = (Date.parse(cert.validTo) - req.now.getTime()) / 86_400_000;
  if (left < minDays) return `expires in ${Math.floor(left)} days`;
  return undefined;
}
