// zod schemas for the Kubernetes kinds the manifests in deployments/ use: the fields we rely on,
// strict where a typo would silently change behaviour (a misspelled volume or probe key).
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS-1123 name');
const labels = z.record(z.string(), z.string());

const metadata = z.strictObject({
  name,
  namespace: name.optional(),
  labels: labels.optional(),
  annotations: labels.optional(),
});

const quantity = z.union([z.string().regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi|k|M|G)?$/), z.number()]);

const envVar = z.strictObject({
  name: z.string(),
  value: z.string().optional(),
  valueFrom: z.strictObject({ fieldRef: z.strictObject({ fieldPath: z.string() }) }).optional(),
});

const volumeMount = z.strictObject({
  name,
  mountPath: z.string().startsWith('/'),
  readOnly: z.boolean().optional(),
  mountPropagation: z.enum(['None', 'HostToContainer', 'Bidirectional']).optional(),
});

const probe = z.strictObject({
  httpGet: z.strictObject({
    path: z.string().startsWith('/'),
    port: z.number().int(),
    host: z.string().optional(),
    scheme: z.enum(['HTTP', 'HTTPS']).optional(),
  }),
  periodSeconds: z.number().int().positive().optional(),
  initialDelaySeconds: z.number().int().nonnegative().optional(),
});

export const containerSchema = z.strictObject({
  name,
  image: z.string().regex(/^[^:]+:[^:]+$/, 'must carry an explicit tag'),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(envVar).optional(),
  securityContext: z
    .strictObject({
      privileged: z.boolean().optional(),
      runAsNonRoot: z.boolean().optional(),
      runAsUser: z.number().int().optional(),
      allowPrivilegeEscalation: z.boolean().optional(),
      readOnlyRootFilesystem: z.boolean().optional(),
    })
    .optional(),
  livenessProbe: probe.optional(),
  readinessProbe: probe.optional(),
  resources: z
    .strictObject({
      requests: z.record(z.string(), quantity).optional(),
      limits: z.record(z.string(), quantity).optional(),
    })
    .optional(),
  volumeMounts: z.array(volumeMount).optional(),
});
export type Container = z.infer<typeof containerSchema>;

const volumeSchema = z.strictObject({
  name,
  hostPath: z
    .strictObject({
      path: z.string().startsWith('/'),
      type: z.enum(['Directory', 'DirectoryOrCreate', 'File', 'FileOrCreate', 'Socket']),
    })
    .optional(),
  configMap: z.strictObject({ name }).optional(),
  secret: z.strictObject({ secretName: name }).optional(),
});
export type Volume = z.infer<typeof volumeSchema>;

const podSpecSchema = z.strictObject({
  serviceAccountName: name.optional(),
  automountServiceAccountToken: z.boolean().optional(),
  hostNetwork: z.boolean().optional(),
  hostPID: z.boolean().optional(),
  priorityClassName: z.string().optional(),
  terminationGracePeriodSeconds: z.number().int().optional(),
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
  nodeSelector: labels.optional(),
  tolerations: z
    .array(
      z.strictObject({
        operator: z.enum(['Exists', 'Equal']),
        effect: z.string().optional(),
        key: z.string().optional(),
      }),
    )
    .optional(),
  initContainers: z.array(containerSchema).optional(),
  containers: z.array(containerSchema).min(1),
  volumes: z.array(volumeSchema).optional(),
});
export type PodSpec = z.infer<typeof podSpecSchema>;

const policyRule = z.strictObject({
  apiGroups: z.array(z.string()).min(1),
  resources: z.array(z.string()).min(1),
  resourceNames: z.array(z.string()).optional(),
  verbs: z
    .array(z.enum(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection']))
    .min(1),
});
export type PolicyRule = z.infer<typeof policyRule>;

const roleRef = z.strictObject({
  apiGroup: z.literal('rbac.authorization.k8s.io'),
  kind: z.enum(['Role', 'ClusterRole']),
  name,
});
const subject = z.strictObject({ kind: z.literal('ServiceAccount'), name, namespace: name });

const podTemplate = z.strictObject({
  metadata: z.strictObject({ labels, annotations: labels.optional() }),
  spec: podSpecSchema,
});

// deployments/webhook.yaml: the admission webhook's Deployment, Service, certificate Job and configuration.
const webhookKinds = [
  z.strictObject({
    apiVersion: z.literal('apps/v1'),
    kind: z.literal('Deployment'),
    metadata,
    spec: z.strictObject({
      replicas: z.number().int().positive(),
      selector: z.strictObject({ matchLabels: labels }),
      template: podTemplate,
    }),
  }),
  z.strictObject({
    apiVersion: z.literal('batch/v1'),
    kind: z.literal('Job'),
    metadata,
    spec: z.strictObject({ backoffLimit: z.number().int().nonnegative().optional(), template: podTemplate }),
  }),
  z.strictObject({
    apiVersion: z.literal('v1'),
    kind: z.literal('Service'),
    metadata,
    spec: z.strictObject({
      selector: labels,
      ports: z.array(z.strictObject({ name, port: z.number().int(), targetPort: z.number().int() })).min(1),
    }),
  }),
  z.strictObject({
    apiVersion: z.literal('admissionregistration.k8s.io/v1'),
    kind: z.literal('MutatingWebhookConfiguration'),
    metadata,
    webhooks: z
      .array(
        z.strictObject({
          name: z.string(),
          admissionReviewVersions: z.array(z.string()).min(1),
          sideEffects: z.enum(['None', 'NoneOnDryRun']),
          failurePolicy: z.enum(['Ignore', 'Fail']),
          timeoutSeconds: z.number().int().min(1).max(30),
          reinvocationPolicy: z.enum(['Never', 'IfNeeded']).optional(),
          matchPolicy: z.enum(['Exact', 'Equivalent']).optional(),
          clientConfig: z.strictObject({
            service: z.strictObject({ namespace: name, name, path: z.string(), port: z.number().int() }),
            caBundle: z.string().optional(),
          }),
          rules: z
            .array(
              z.strictObject({
                operations: z.array(z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT', '*'])),
                apiGroups: z.array(z.string()),
                apiVersions: z.array(z.string()),
                resources: z.array(z.string()),
                scope: z.enum(['Cluster', 'Namespaced', '*']).optional(),
              }),
            )
            .min(1),
          namespaceSelector: z.strictObject({
            matchExpressions: z.array(
              z.strictObject({
                key: z.string(),
                operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
                values: z.array(z.string()).optional(),
              }),
            ),
          }),
        }),
      )
      .min(1),
  }),
] as const;

export const manifestSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    apiVersion: z.literal('kustomize.config.k8s.io/v1beta1'),
    kind: z.literal('Kustomization'),
    namespace: name.optional(),
    labels: z.array(z.strictObject({ pairs: labels, includeSelectors: z.boolean().optional() })).optional(),
    resources: z.array(z.string()).min(1),
    images: z
      .array(
        z.strictObject({ name: z.string(), newName: z.string().optional(), newTag: z.string().optional() }),
      )
      .optional(),
  }),
  z.strictObject({ apiVersion: z.literal('v1'), kind: z.literal('Namespace'), metadata }),
  z.strictObject({
    apiVersion: z.literal('v1'),
    kind: z.literal('ServiceAccount'),
    metadata,
    automountServiceAccountToken: z.boolean().optional(),
  }),
  z.strictObject({ apiVersion: z.literal('v1'), kind: z.literal('ConfigMap'), metadata, data: labels }),
  z.strictObject({
    apiVersion: z.literal('rbac.authorization.k8s.io/v1'),
    kind: z.literal('ClusterRole'),
    metadata,
    rules: z.array(policyRule).min(1),
  }),
  z.strictObject({
    apiVersion: z.literal('rbac.authorization.k8s.io/v1'),
    kind: z.literal('Role'),
    metadata,
    rules: z.array(policyRule).min(1),
  }),
  z.strictObject({
    apiVersion: z.literal('rbac.authorization.k8s.io/v1'),
    kind: z.literal('ClusterRoleBinding'),
    metadata,
    roleRef,
    subjects: z.array(subject).min(1),
  }),
  z.strictObject({
    apiVersion: z.literal('rbac.authorization.k8s.io/v1'),
    kind: z.literal('RoleBinding'),
    metadata,
    roleRef,
    subjects: z.array(subject).min(1),
  }),
  z.strictObject({
    apiVersion: z.literal('apiextensions.k8s.io/v1'),
    kind: z.literal('CustomResourceDefinition'),
    metadata,
    spec: z.strictObject({
      group: z.string(),
      scope: z.enum(['Namespaced', 'Cluster']),
      names: z.strictObject({
        plural: z.string(),
        singular: z.string(),
        kind: z.string(),
        shortNames: z.array(z.string()).optional(),
      }),
      versions: z
        .array(
          z.strictObject({
            name: z.string(),
            served: z.boolean(),
            storage: z.boolean(),
            schema: z.strictObject({ openAPIV3Schema: z.record(z.string(), z.unknown()) }),
          }),
        )
        .min(1),
    }),
  }),
  z.strictObject({
    apiVersion: z.literal('apps/v1'),
    kind: z.literal('DaemonSet'),
    metadata,
    spec: z.strictObject({
      selector: z.strictObject({ matchLabels: labels }),
      updateStrategy: z.strictObject({ type: z.enum(['RollingUpdate', 'OnDelete']) }).optional(),
      template: z.strictObject({
        metadata: z.strictObject({ labels, annotations: labels.optional() }),
        spec: podSpecSchema,
      }),
    }),
  }),
  z.strictObject({
    apiVersion: z.literal('k8s.cni.cncf.io/v1'),
    kind: z.literal('NetworkAttachmentDefinition'),
    metadata,
    spec: z.strictObject({ config: z.string().optional() }),
  }),
  z.strictObject({ apiVersion: z.literal('v1'), kind: z.literal('Pod'), metadata, spec: podSpecSchema }),
  ...webhookKinds,
]);
export type Manifest = z.infer<typeof manifestSchema>;
