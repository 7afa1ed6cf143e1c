import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify, type ToStringOptions } from 'yaml';
import { parseKubeconfigText } from './kubeconfig-text.js';

// The contract, checked on every input: either we give up, or we agree with yaml exactly (and we
// give up whenever yaml throws).
function expectAgreesWithYaml(text: string): unknown {
  let want: unknown;
  try {
    want = parse(text, { logLevel: 'error' }); // same result as the defaults, without warnings on stderr
  } catch {
    expect(parseKubeconfigText(text)).toBeUndefined();
    return undefined;
  }
  const got = parseKubeconfigText(text);
  // node's deep equality, not vitest's: toStrictEqual compares `.constructor`, which is an own
  // property (a value from the document) when the key `constructor` is in it.
  if (got !== undefined && !isDeepStrictEqual(got, want))
    expect.fail(`differs from yaml on ${JSON.stringify(text)}`);
  return got;
}

/** Base64 of a PEM block of about `size` bytes, as kubeconfigs inline it (`LS0tLS1CRUdJTi...`). */
function pemData(label: string, size: number, seed: number): string {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = (seed * 31 + i * 17) % 256;
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  const pem = `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
  return Buffer.from(pem).toString('base64');
}

const CA = pemData('CERTIFICATE', 800, 1);
const CERT = pemData('CERTIFICATE', 850, 2);
const KEY = pemData('RSA PRIVATE KEY', 1200, 3);
const JWT =
  'eyJhbGciOiJSUzI1NiIsImtpZCI6IjRkN2Y5In0.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';

// Typed the way each tool writes them (kubectl/client-go: keys sorted, lists not indented).
const FIXTURES: Record<string, string> = {
  'kind (kubectl config view --raw)': `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${CA}
    server: https://127.0.0.1:38271
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: ${CERT}
    client-key-data: ${KEY}
`,
  'kubeadm admin.conf': `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${CA}
    server: https://192.168.10.4:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: ${CERT}
    client-key-data: ${KEY}
`,
  'token user, namespace in the context (kubectl config set-*)': `apiVersion: v1
clusters:
- cluster:
    certificate-authority: /etc/kubernetes/pki/ca.crt
    server: https://kubernetes.default.svc:443
    tls-server-name: kubernetes
  name: default
contexts:
- context:
    cluster: default
    namespace: kube-system
    user: sa
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: sa
  user:
    token: ${JWT}
`,
  'tokenFile user': `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://10.96.0.1:443
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
users:
- name: netplumb
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
contexts:
- name: netplumb
  context:
    cluster: local
    user: netplumb
current-context: netplumb
`,
  "Multus installer's multus.kubeconfig": `# Kubeconfig file for Multus CNI plugin.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://[10.96.0.1]:443
    insecure-skip-tls-verify: true
users:
- name: multus
  user:
    token: "${JWT}"
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
`,
  'Multus installer with a CA': `# Kubeconfig file for Multus CNI plugin.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://[fd00:10:96::1]:443
    certificate-authority-data: ${CA}
users:
- name: multus
  user:
    token: "${JWT}"
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
`,
  'EKS exec user (args list, env: null)': `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${CA}
    server: https://0123456789ABCDEF.gr7.us-west-2.eks.amazonaws.com
  name: arn:aws:eks:us-west-2:123456789012:cluster/demo
contexts:
- context:
    cluster: arn:aws:eks:us-west-2:123456789012:cluster/demo
    user: arn:aws:eks:us-west-2:123456789012:cluster/demo
  name: arn:aws:eks:us-west-2:123456789012:cluster/demo
current-context: arn:aws:eks:us-west-2:123456789012:cluster/demo
kind: Config
preferences: {}
users:
- name: arn:aws:eks:us-west-2:123456789012:cluster/demo
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - --region
      - us-west-2
      - eks
      - get-token
      - --cluster-name
      - demo
      - --output
      - json
      command: aws
      env: null
      interactiveMode: IfAvailable
      provideClusterInfo: false
`,
  'exec user with env entries': `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://api.example.test:6443
  name: c
contexts:
- context:
    cluster: c
    user: u
  name: c
current-context: c
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /usr/local/bin/kubelogin
      args:
      - get-token
      - --login=devicecode
      env:
      - name: AAD_SERVICE_PRINCIPAL_CLIENT_ID
        value: "00000000-0000-0000-0000-000000000000"
      - name: KUBECONFIG_MODE
        value: ''
      interactiveMode: Never
      provideClusterInfo: true
`,
  'minikube with extensions lists': `apiVersion: v1
clusters:
- cluster:
    certificate-authority: /home/me/.minikube/ca.crt
    extensions:
    - extension:
        last-update: Mon, 01 Jan 2024 10:00:00 UTC
        provider: minikube.sigs.k8s.io
        version: v1.32.0
      name: cluster_info
    server: https://192.168.49.2:8443
  name: minikube
contexts:
- context:
    cluster: minikube
    extensions:
    - extension:
        last-update: Mon, 01 Jan 2024 10:00:00 UTC
        provider: minikube.sigs.k8s.io
        version: v1.32.0
      name: context_info
    namespace: default
    user: minikube
  name: minikube
current-context: minikube
kind: Config
preferences: {}
users:
- name: minikube
  user:
    client-certificate: /home/me/.minikube/profiles/minikube/client.crt
    client-key: /home/me/.minikube/profiles/minikube/client.key
`,
  'basic auth, proxy-url, comments, null and empty values': `# written by hand, the way docs show it
apiVersion: v1
kind: Config
clusters:
  - name: lab  # the rack in the lab
    cluster:
      server: http://10.0.0.1:8080
      insecure-skip-tls-verify: true
      proxy-url: socks5://localhost:1080

users:
  - name: admin
    user:
      username: admin
      password: 'p@ss: #1 ''quoted'''
      as: ~
      as-groups: []
contexts:
  # one context
  - name: lab
    context:
      cluster: lab
      user: admin
current-context: lab
preferences:
`,
};

describe('parseKubeconfigText on kubeconfigs as the tools write them', () => {
  for (const [name, text] of Object.entries(FIXTURES)) {
    it(`reads ${name} exactly as yaml does, without falling back`, () => {
      const got = parseKubeconfigText(text);
      expect(got).not.toBeUndefined();
      expect(got).toStrictEqual(parse(text));
    });
  }

  it('reads the client certificate data as one string', () => {
    const got = parseKubeconfigText(FIXTURES['kind (kubectl config view --raw)'] ?? '') as {
      users: { user: Record<string, unknown> }[];
    };
    expect(got.users[0]?.user['client-key-data']).toBe(KEY);
  });

  it('reads what yaml stringify writes for the same documents', () => {
    for (const text of Object.values(FIXTURES)) {
      const doc: unknown = parse(text);
      for (const options of STRINGIFY_OPTIONS) {
        const written = stringify(doc, options);
        const got = expectAgreesWithYaml(written);
        // Double quotes fold long strings over lines (`\` continuations) unless lineWidth is 0.
        const folded = options.defaultStringType === 'QUOTE_DOUBLE' && options.lineWidth !== 0;
        if (!folded) expect(got, JSON.stringify(options)).not.toBeUndefined();
      }
    }
  });
});

describe('parseKubeconfigText gives up (undefined) outside the subset', () => {
  const outside: [string, string][] = [
    ['CRLF line ends', 'apiVersion: v1\r\nkind: Config\r\n'],
    ['a tab for indentation', 'a:\n\tb: c\n'],
    ['a tab after a value', 'a: b\t# c\n'],
    ['a BOM', '\ufeffapiVersion: v1\n'],
    ['a document start marker', '---\napiVersion: v1\n'],
    ['a document end marker', 'apiVersion: v1\n...\n'],
    ['a directive', '%YAML 1.2\n---\na: b\n'],
    ['an anchor', 'a: &x b\nc: d\n'],
    ['an alias', 'a: b\nc: *x\n'],
    ['a tag', 'a: !!str b\n'],
    ['a literal block scalar', 'a: |\n  line\n'],
    ['a folded block scalar', 'a: >-\n  line\n'],
    ['a flow mapping', 'a: {b: c}\n'],
    ['a flow sequence', 'args: [a, b]\n'],
    ['a spaced empty flow mapping', 'preferences: { }\n'],
    [
      'a folded plain scalar (go-yaml wraps long ones)',
      'installHint: Install gke-gcloud-auth-plugin for use\n  with kubectl by following the docs\n',
    ],
    ['a double-quoted scalar over two lines', 'a: "b\n  c"\n'],
    ['a double-quoted line continuation', 'a: "b\\\n  c"\n'],
    ['a single-quoted scalar over two lines', "a: 'b\n  c'\n"],
    ['an explicit key', '? a\n: b\n'],
    ['a duplicate key', 'a: b\na: c\n'],
    ['a duplicate key, once quoted', 'a: b\n"a": c\n'],
    ['a number', 'port: 6443\n'],
    ['a hex number', 'a: 0x1F\n'],
    ['an infinity', 'a: -.inf\n'],
    ['a numeric key', '1: a\n'],
    ['a null key', 'null: a\n'],
    ['a __proto__ key', '__proto__: a\n'],
    ['a value with ": "', 'a: b: c\n'],
    ['a value ending in ":"', 'a: b:\n'],
    ['a sequence entry after a key on one line', 'a: - b\n'],
    ['an unknown escape', 'a: "\\q"\n'],
    ['a code point past U+10FFFF', 'a: "\\UFFFFFFFF"\n'],
    ['text after a closing quote', 'a: "b" c\n'],
    ['a comment glued to a closing quote', 'a: "b"# c\n'],
    ['a space before the colon', 'a : b\n'],
    ['a merge key', '<<: {}\n'],
    ['a reserved indicator', 'a: @b\n'],
    ['a root that is indented', '  a: b\n'],
    ['a root scalar', 'just text\n'],
    ['an empty document', ''],
    ['only comments', '# nothing\n'],
    ['a key more indented than its siblings', 'a:\n  b: c\n   d: e\n'],
    ['a key less indented than its siblings', 'a:\n    b: c\n  d: e\n'],
    ['a misaligned compact mapping', '- a: b\n   c: d\n'],
    ['a sequence entry among keys', 'a: b\n- c\n'],
  ];
  for (const [what, text] of outside) {
    it(`on ${what}`, () => {
      expect(parseKubeconfigText(text)).toBeUndefined();
      expectAgreesWithYaml(text);
    });
  }

  it('never throws and stays fast on hostile inputs', () => {
    const n = 200_000;
    const hostile = [
      'a:\n' + Array.from({ length: 5000 }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n'),
      '- '.repeat(n),
      `a: "${'\\"'.repeat(n)}`,
      `a: "${'\\'.repeat(n)}"`,
      `a: '${"''".repeat(n)}`,
      `a: ${'x '.repeat(n)}#`,
      `a: ${': '.repeat(n)}`,
      `${'k'.repeat(n)}: v`,
      `a: ${'1'.repeat(n)}x`,
      `a: ${'1'.repeat(n)}.5e`,
      `a: ${'x'.repeat(n)}\n`.repeat(20),
      ' '.repeat(n) + 'a',
      '\n'.repeat(n),
    ];
    for (const text of hostile) expect(() => parseKubeconfigText(text)).not.toThrow();
    expect(parseKubeconfigText(hostile[0] ?? '')).toBeUndefined(); // deeper than the limit
  });

  it('reads scalars as the core schema does', () => {
    const text = [
      'n1: null',
      'n2: Null',
      'n3: NULL',
      'n4: ~',
      'n5:',
      't1: true',
      't2: True',
      't3: TRUE',
      'f1: false',
      'f2: False',
      'f3: FALSE',
      's1: yes',
      's2: nULL',
      's3: 10.0.0.1',
      's4: 1abc',
      's5: -x',
      's6: +x',
      's7: .kube',
      's9: 1_000',
      // Strings to the core schema that look like numbers (short base64 values do): read, not bailed on.
      's15: 0O20',
      's16: 0X1F',
      's17: -.nan',
      's18: +0x1',
      's19: -0o7',
      's20: 1e',
      's21: .',
      's10: "\\x41\\u00e9\\U0001F600\\t\\0\\ \\/\\N\\_\\L\\P"',
      "s11: ''",
      's12: a#b',
      's13: a # b',
      's14: https://[::1]:6443/x?y=z#frag',
      '"quoted key": v',
      "'it''s': v",
      'constructor: v',
    ].join('\n');
    expect(expectAgreesWithYaml(text)).not.toBeUndefined();
  });
});

// Option sets the tools and yaml itself produce: yaml's default (indented lists), kubectl's style
// (lists at the key's column), no line wrapping, and every string quoted one way or the other.
const STRINGIFY_OPTIONS: ToStringOptions[] = [
  {},
  { indentSeq: false },
  { lineWidth: 0 },
  { indentSeq: false, lineWidth: 0 },
  { defaultStringType: 'QUOTE_DOUBLE' },
  { defaultStringType: 'QUOTE_DOUBLE', lineWidth: 0 },
  { defaultStringType: 'QUOTE_SINGLE' },
  { defaultKeyType: 'PLAIN', defaultStringType: 'QUOTE_DOUBLE', indentSeq: false },
];

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const pem = fc
  .uint8Array({ minLength: 0, maxLength: 1200 })
  .map((b) =>
    Buffer.from(`-----BEGIN CERTIFICATE-----\n${Buffer.from(b).toString('base64')}\n`).toString('base64'),
  );
const blob = fc.uint8Array({ minLength: 0, maxLength: 300 }).map((b) => Buffer.from(b).toString('base64'));
const jwt = fc
  .array(fc.uint8Array({ minLength: 1, maxLength: 60 }), { minLength: 3, maxLength: 3 })
  .map((parts) => parts.map((p) => Buffer.from(p).toString('base64url')).join('.'));
const server = fc.oneof(
  fc.tuple(name, fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `https://${h}.example.test:${p}`),
  fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `https://${h}:${p}`),
  fc.ipV6().map((h) => `https://[${h}]:6443`),
);
const realistic = fc.oneof(name, server, pem, blob, jwt);

// Strings that mean something else to YAML, or look like they might.
const tricky = fc.constantFrom(
  ...['123', '-1', '+1', '1.', '.5', '1e3', '1E-3', '0x1F', '0o17', '0X1F', '1_000', '.inf', '-.Inf', '.NaN'],
  ...[
    'true',
    'False',
    'TRUE',
    'null',
    'Null',
    '~',
    '',
    ' ',
    'yes',
    'off',
    '<<',
    '=',
    '__proto__',
    'constructor',
  ],
  ...['a: b', 'a:', 'a:b', ':a', 'a :b', 'a #b', 'a#b', '#a', ' #', "it's", "'", '"q"', '"', '\\', 'a\\nb'],
  ...['- x', '-', '-x', '--flag', '---', '...', '? x', '?x', '@x', '`x', '%x', '|', '>-', '&a', '*a', '!t'],
  ...['[x]', '{x}', '{}', '[]', ',x', 'x,y', 'é', '日本語', '😀', 'a\nb', 'a\tb', ' lead', 'trail ', 'a  b'],
  ...['\r', '\u0085', '\u00a0', '\u2028', '\ufeff', '\ud800', 'Mon, 01 Jan 2024 10:00:00 UTC'],
);
const numberish = fc.stringMatching(/^[-+.0-9eExXoOa-f_]{1,8}$/);
const str = fc.oneof(
  { weight: 3, arbitrary: realistic },
  { weight: 3, arbitrary: tricky },
  { weight: 1, arbitrary: numberish },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.tuple(tricky, name, tricky).map((parts) => parts.join('')) },
);
// A fresh object each time: a shared one would be written once with an anchor and then aliased.
const emptyObject = fc.constant(null).map(() => ({}));
const scalar = fc.oneof({ weight: 5, arbitrary: str }, fc.boolean(), fc.constant(null));

function kubeconfig(text: fc.Arbitrary<string>, key: fc.Arbitrary<string>, value: fc.Arbitrary<unknown>) {
  const cluster = fc.record(
    {
      server: text,
      'certificate-authority-data': text,
      'certificate-authority': text,
      'insecure-skip-tls-verify': fc.boolean(),
      'tls-server-name': text,
      extensions: fc.array(fc.record({ name: text, extension: fc.dictionary(key, value, { maxKeys: 3 }) }), {
        maxLength: 2,
      }),
    },
    { requiredKeys: ['server'] },
  );
  const exec = fc.record(
    {
      apiVersion: fc.constant('client.authentication.k8s.io/v1beta1'),
      command: text,
      args: fc.array(text, { maxLength: 6 }),
      env: fc.oneof(fc.constant(null), fc.array(fc.record({ name: text, value: text }), { maxLength: 3 })),
      interactiveMode: fc.constantFrom('Never', 'IfAvailable', 'Always'),
      provideClusterInfo: fc.boolean(),
    },
    { requiredKeys: ['command'] },
  );
  const user = fc.oneof(
    fc.record({ 'client-certificate-data': text, 'client-key-data': text }),
    fc.record({ token: text }),
    fc.record({ tokenFile: text }),
    fc.record({ username: text, password: text }),
    fc.record({ exec }),
    emptyObject,
  );
  const context = fc.record(
    { cluster: text, user: text, namespace: text },
    { requiredKeys: ['cluster', 'user'] },
  );
  return fc.record(
    {
      apiVersion: fc.constant('v1'),
      kind: fc.constant('Config'),
      preferences: fc.oneof(emptyObject, fc.dictionary(key, value, { maxKeys: 2 })),
      clusters: fc.array(fc.record({ name: text, cluster }), { maxLength: 3 }),
      contexts: fc.array(fc.record({ name: text, context }), { maxLength: 3 }),
      users: fc.array(fc.record({ name: text, user }), { maxLength: 3 }),
      'current-context': text,
      extensions: fc.array(fc.record({ name: text, extension: fc.dictionary(key, value, { maxKeys: 4 }) }), {
        maxLength: 2,
      }),
    },
    { requiredKeys: ['apiVersion', 'kind', 'clusters', 'contexts', 'users'] },
  );
}

// Three mixes: anything (most documents fall back somewhere, so this mostly tests the bail-outs),
// mostly realistic values with the odd tricky one (most are read: this tests what we accept), and
// only realistic ones (everything must be read).
const anyDoc = kubeconfig(
  str,
  str,
  fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.dictionary(str, scalar, { maxKeys: 2 })),
);
const mostlyRealistic = fc.oneof(
  { weight: 40, arbitrary: realistic },
  { weight: 1, arbitrary: tricky },
  { weight: 1, arbitrary: numberish },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
);
const mixedDoc = kubeconfig(
  mostlyRealistic,
  fc.oneof({ weight: 20, arbitrary: name }, { weight: 1, arbitrary: str }),
  fc.oneof(mostlyRealistic, fc.boolean(), fc.constant(null), fc.array(mostlyRealistic, { maxLength: 3 })),
);
const commonDoc = kubeconfig(
  realistic,
  name,
  fc.oneof(realistic, fc.boolean(), fc.constant(null), fc.array(realistic, { maxLength: 3 })),
);
const someDoc = fc.oneof(anyDoc, mixedDoc);

// Edits that take a valid document just outside (or just inside) the subset.
const INSERTED_LINES = [
  '',
  '#',
  '# c',
  '   # c',
  'x',
  '  x',
  'x: y',
  '  x: y',
  '- z',
  '  - z',
  '-',
  '---',
  '...',
  '%YAML 1.2',
  '? a',
  ': b',
  'k: &a v',
  'k: *a',
  'k: !t v',
  'k: |',
  '  text',
  'k: "open',
  "k: 'open",
  '\t',
  ' \t',
  'k: {a: 1}',
  'k: [a]',
  'apiVersion: v2',
  'kind: Config',
];
const INSERTED_TEXT = [
  ' ',
  '  ',
  '\t',
  '\r',
  ' #c',
  '#',
  ': ',
  ':',
  '-',
  '- ',
  '&a ',
  '*a',
  '!t ',
  '"',
  "'",
  '\\',
  '{',
  '}',
  '[',
  ']',
  ',',
  '? ',
  '|',
  '\ufeff',
];
const mutation = fc.tuple(
  fc.constantFrom('insert-line', 'indent', 'dedent', 'insert-text', 'duplicate-line', 'delete-line', 'crlf'),
  fc.nat(),
  fc.nat(),
  fc.nat(),
);

function mutate(text: string, [kind, line, column, pick]: [string, number, number, number]): string {
  const lines = text.split('\n');
  const at = line % lines.length;
  const target = lines[at] ?? '';
  switch (kind) {
    case 'insert-line':
      lines.splice(at, 0, INSERTED_LINES[pick % INSERTED_LINES.length] ?? '');
      break;
    case 'indent':
      lines[at] = ' '.repeat(1 + (pick % 3)) + target;
      break;
    case 'dedent':
      lines[at] = target.replace(/^ {1,2}/, '');
      break;
    case 'insert-text': {
      const col = column % (target.length + 1);
      lines[at] =
        target.slice(0, col) + (INSERTED_TEXT[pick % INSERTED_TEXT.length] ?? '') + target.slice(col);
      break;
    }
    case 'duplicate-line':
      lines.splice(at, 0, target);
      break;
    case 'delete-line':
      lines.splice(at, 1);
      break;
    default:
      lines[at] = `${target}\r`;
  }
  return lines.join('\n');
}

describe('parseKubeconfigText against yaml on random kubeconfigs', () => {
  it('agrees with yaml (or gives up) on any document, stringified any way', () => {
    fc.assert(
      fc.property(someDoc, (doc) => {
        for (const options of STRINGIFY_OPTIONS) expectAgreesWithYaml(stringify(doc, options));
      }),
      { numRuns: 250 },
    );
  }, 60_000);

  it('agrees with yaml (or gives up) on mutated text', () => {
    fc.assert(
      fc.property(
        someDoc,
        fc.constantFrom(...STRINGIFY_OPTIONS),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (doc, options, edits) => {
          expectAgreesWithYaml(edits.reduce(mutate, stringify(doc, options)));
        },
      ),
      { numRuns: 1000 },
    );
  }, 60_000);

  it('does not give up on the common shapes (kubectl style, yaml defaults, no wrapping, single quotes)', () => {
    const styles: ToStringOptions[] = [
      {},
      { indentSeq: false },
      { lineWidth: 0 },
      { defaultStringType: 'QUOTE_SINGLE' },
      { defaultStringType: 'QUOTE_DOUBLE', lineWidth: 0 },
    ];
    fc.assert(
      fc.property(commonDoc, (doc) => {
        for (const options of styles) {
          const text = stringify(doc, options);
          const got = parseKubeconfigText(text);
          expect(got, text).not.toBeUndefined();
          expect(isDeepStrictEqual(got, parse(text)), text).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  }, 60_000);
});
