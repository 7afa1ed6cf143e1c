// `netplumb webhook` (serve the mutating admission webhook) and `netplumb webhook certs` (make the
// CA + serving certificate, store them in the Secret the webhook mounts, set the caBundle).
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { createKubeClient } from '../cni/meta/kube-client-node.js';
import { createNadWatch, loadKubeConfig } from '../cni/daemon/kube-informers.js';
import { loadClientNodeConfig } from '../cni/daemon/kube-config.js';
import { RESOURCE_NAME_ANNOTATION } from '../cni/meta/annotations.js';
import { META_DEFAULTS } from '../cni/meta/config.js';
import { reportCliError } from '../lib/errors.js';
import { ensureCertificates, fileCertStore, kubeCertStore } from './cert-store.js';
import { createConfigMapWatch } from './configmap-watch.js';
import { CONTROL_SWITCHES_CONFIGMAP } from './control-switches.js';
import { WEBHOOK_DEFAULTS } from './server.js';
import { TLS_VERSIONS } from './tls.js';
import type { TlsVersion } from './tls.js';
import { startWebhook } from './webhook.js';
import type { RunningWebhook } from './webhook.js';

export interface WebhookCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Pick<NodeJS.WritableStream, 'write'>;
  readonly stderr: Pick<NodeJS.WritableStream, 'write'>;
  readonly on: (signal: 'SIGTERM' | 'SIGINT', fn: () => void) => unknown;
  readonly setExitCode: (code: number) => void;
}

const TLS_DIR = '/etc/netplumb/webhook-tls';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port 0-65535');
  return n;
}

function days(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 3650) throw new InvalidArgumentError('must be whole days, 1-3650');
  return n;
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

interface ServeFlags {
  host: string;
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsMinVersion: TlsVersion;
  tlsCipherSuites?: string;
  kubeconfig?: string;
  downwardApi: boolean;
  downwardApiHugepages: boolean;
  namespaceIsolation: boolean;
  globalNamespaces: string[];
  honorResources: boolean;
  networkResourceNameKeys: string[];
  controlSwitchesConfigmap: string;
  namespace?: string;
  multusNamespace: string;
  logLevel: string;
}

function serveCommand(deps: WebhookCommandDeps): Command {
  return new Command('serve')
    .description('Serve POST /mutate (AdmissionReview v1), /healthz, /readyz and /metrics over HTTPS')
    .option('--host <addr>', 'listen address', '0.0.0.0')
    .option('--port <n>', 'HTTPS port', port, WEBHOOK_DEFAULTS.port)
    .option('--tls-cert-file <file>', 'serving certificate (reloaded when it changes)', `${TLS_DIR}/tls.crt`)
    .option('--tls-key-file <file>', 'its private key', `${TLS_DIR}/tls.key`)
    .addOption(
      new Option('--tls-min-version <v>', 'lowest TLS version').choices(TLS_VERSIONS).default('TLSv1.2'),
    )
    .option(
      '--tls-cipher-suites <list>',
      'OpenSSL cipher list, e.g. ECDHE-RSA-AES256-GCM-SHA384:TLS_AES_256_GCM_SHA384',
    )
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster)')
    .option(
      '--downward-api',
      `mount network-status, networks and hugepages into containers at /etc/podnetinfo`,
      false,
    )
    .option(
      '--downward-api-hugepages',
      'also hugepages requests/limits per container (Kubernetes >= 1.23, or the DownwardAPIHugePages gate)',
      false,
    )
    .option(
      '--namespace-isolation',
      'as the CNI config key: a pod may only use NADs of its namespace and --global-namespaces',
      false,
    )
    .option('--global-namespaces <list>', 'namespaces any pod may use NADs from', list, [
      ...META_DEFAULTS.globalNamespaces,
    ])
    .option(
      '--honor-resources',
      "as network-resources-injector's: add the networks' count to the pod's own requests instead of keeping the larger",
      false,
    )
    .option(
      '--network-resource-name-keys <list>',
      'NAD annotations naming the device pool, each counted',
      list,
      [RESOURCE_NAME_ANNOTATION],
    )
    .option(
      '--control-switches-configmap <name>',
      "ConfigMap with network-resources-injector's switches and user-defined injections, watched ('' = none)",
      CONTROL_SWITCHES_CONFIGMAP,
    )
    .option(
      '--namespace <ns>',
      'namespace of that ConfigMap (default env POD_NAMESPACE, else NAMESPACE, else netplumb)',
    )
    .option(
      '--multus-namespace <ns>',
      'as the CNI config key: where a v1.multus-cni.io/default-network name is looked up',
      META_DEFAULTS.multusNamespace,
    )
    .option('--log-level <level>', 'pino level', 'info')
    .action(async (f: ServeFlags) => {
      const logger = pino({ level: f.logLevel, base: { component: 'webhook' } }, pino.destination(2));
      let hook;
      try {
        hook = await serve(
          f,
          logger,
          f.namespace ?? deps.env['POD_NAMESPACE'] ?? deps.env['NAMESPACE'] ?? 'netplumb',
        );
      } catch (err) {
        deps.setExitCode(reportCliError(err, deps.stderr));
        return;
      }
      await new Promise<void>((resolve) => {
        deps.on('SIGTERM', resolve);
        deps.on('SIGINT', resolve);
      });
      await hook.stop();
    });
}

function serve(f: ServeFlags, logger: Logger, namespace: string): Promise<RunningWebhook> {
  const kc = loadKubeConfig(f.kubeconfig);
  const cm = f.controlSwitchesConfigmap;
  return startWebhook({
    logger,
    tls: {
      certFile: f.tlsCertFile,
      keyFile: f.tlsKeyFile,
      minVersion: f.tlsMinVersion,
      ciphers: f.tlsCipherSuites,
    },
    listen: { host: f.host, port: f.port },
    nads: createNadWatch(kc),
    live: createKubeClient(f.kubeconfig),
    ...(cm !== '' ? { switches: createConfigMapWatch(kc, namespace, cm) } : {}),
    options: {
      downwardApi: f.downwardApi || f.downwardApiHugepages,
      downwardApiHugepages: f.downwardApiHugepages,
      namespaceIsolation: f.namespaceIsolation,
      globalNamespaces: f.globalNamespaces,
      honorExistingResources: f.honorResources,
      resourceNameKeys: f.networkResourceNameKeys,
      multusNamespace: f.multusNamespace,
    },
  });
}

interface CertsFlags {
  namespace?: string;
  service: string;
  secret: string;
  webhookConfig: string;
  days: number;
  renewBeforeDays: number;
  outDir?: string;
  kubeconfig?: string;
  json: boolean;
}

function certsCommand(deps: WebhookCommandDeps): Command {
  return new Command('certs')
    .description(
      'Create a CA + serving certificate (kept while valid), store them in the Secret and set the caBundle',
    )
    .option('--namespace <ns>', 'the webhook Service’s namespace (default env POD_NAMESPACE, else netplumb)')
    .option('--service <name>', 'the webhook Service', 'netplumb-webhook')
    .option('--secret <name>', 'kubernetes.io/tls Secret the webhook mounts', 'netplumb-webhook-tls')
    .option(
      '--webhook-config <name>',
      'MutatingWebhookConfiguration whose caBundle is set',
      'netplumb-webhook',
    )
    .option('--days <n>', 'validity of new certificates', days, 365)
    .option('--renew-before-days <n>', 'replace a stored certificate this close to expiry', days, 30)
    .option('--out-dir <dir>', 'write tls.crt, tls.key, ca.crt here instead of the API (caBundle printed)')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster)')
    .option('--json', 'machine-readable output', false)
    .action(async (f: CertsFlags) => {
      const namespace = f.namespace ?? deps.env['POD_NAMESPACE'] ?? 'netplumb';
      try {
        const store =
          f.outDir !== undefined
            ? fileCertStore(f.outDir)
            : kubeCertStore(loadClientNodeConfig(f.kubeconfig), {
                namespace,
                secret: f.secret,
                webhookConfig: f.webhookConfig,
              });
        const out = await ensureCertificates(
          store,
          { service: f.service, namespace, days: f.days, now: new Date() },
          f.renewBeforeDays,
        );
        const caBundle = Buffer.from(out.caCert).toString('base64');
        const where = f.outDir ?? `Secret ${namespace}/${f.secret}`;
        if (f.json) {
          deps.stdout.write(
            `${JSON.stringify({ renewed: out.renewed, reason: out.reason ?? null, stored: where, webhooksPatched: out.webhooksPatched, caBundle })}\n`,
          );
        } else {
          deps.stdout.write(
            `${out.renewed ? `new certificate (${out.reason ?? ''})` : 'certificate still valid, kept'} in ${where}; caBundle set on ${out.webhooksPatched} webhook(s)\n`,
          );
          if (f.outDir !== undefined) deps.stdout.write(`caBundle: ${caBundle}\n`);
        }
      } catch (err) {
        deps.setExitCode(reportCliError(err, deps.stderr, f.json));
      }
    });
}

export function webhookCommand(deps: WebhookCommandDeps): Command {
  return new Command('webhook')
    .description(
      'Mutating admission webhook: adds the device requests a pod’s networks need (network-resources-injector)',
    )
    .addCommand(serveCommand(deps), { isDefault: true })
    .addCommand(certsCommand(deps));
}
