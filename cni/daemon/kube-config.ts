// client-node's KubeConfig, for the code that still talks to the API through client-node (the
// webhook's Secret/caBundle store). The CNI daemon and meta-plugin use cni/meta/kube-rest.ts.
import { KubeConfig } from '@kubernetes/client-node';

export function loadClientNodeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig === undefined) kc.loadFromCluster();
  else kc.loadFromFile(kubeconfig);
  return kc;
}
