//! Names every part of clawops agrees on: field manager, finalizer, labels, annotations,
//! condition types and reasons, well-known environment variables and paths.

/// The one server-side-apply field manager of the operator.
pub const FIELD_MANAGER: &str = "clawops-operator";
/// Finalizer that removes cluster-scoped objects (the ClusterRoleBinding) of an Agent.
pub const FINALIZER: &str = "clawops.dev/cleanup";
/// Name of the reporting controller in Events.
pub const CONTROLLER_NAME: &str = "clawops-operator";

pub const GATEWAY_PORT: u16 = 18789;
pub const DEFAULT_IMAGE_REPO: &str = "ghcr.io/clawops/clawops";

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// Set on each CronJob: the Cron it runs.
pub const LABEL_CRON: &str = "clawops.dev/cron";
pub const APP_NAME: &str = "clawops";
/// Secrets with `app.kubernetes.io/part-of: clawops` are watched, so fixing them takes effect at once.
pub const WATCHED_SECRET_SELECTOR: &str = "app.kubernetes.io/part-of=clawops";

pub const COMPONENT_GATEWAY: &str = "gateway";
pub const COMPONENT_CRON: &str = "cron";
/// The scheduled backups of `Agent.spec.backup`.
pub const COMPONENT_BACKUP: &str = "backup";

/// Hash of the applied object on every generated object; equal hash means nothing to write.
pub const ANNOTATION_APPLIED_HASH: &str = "clawops.dev/applied-hash";
/// Hash of config and referenced Secret data on the pod template, so any change rolls the pod.
pub const ANNOTATION_CONFIG_HASH: &str = "clawops.dev/config-hash";

pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_SECRETS_RESOLVED: &str = "SecretsResolved";
pub const CONDITION_EXPOSED: &str = "Exposed";
pub const CONDITION_GATEWAY_AVAILABLE: &str = "GatewayAvailable";
/// With `spec.backup`: whether the last scheduled backup succeeded.
pub const CONDITION_BACKED_UP: &str = "BackedUp";

/// Gateway config file inside its ConfigMap and in the pod.
pub const CONFIG_FILE: &str = "gateway.json";
pub const CONFIG_DIR: &str = "/etc/clawops";
pub const STATE_DIR: &str = "/var/lib/clawops";
/// Key of the generated gateway token in its Secret.
pub const TOKEN_KEY: &str = "token";

pub const ENV_GATEWAY_TOKEN: &str = "CLAWOPS_GATEWAY_TOKEN";
pub const ENV_GATEWAY_URL: &str = "CLAWOPS_GATEWAY_URL";
/// Set on a Cron's pod: which Secret key its gateway token comes from, for a refused token's
/// message (never the token itself).
pub const ENV_GATEWAY_TOKEN_FROM: &str = "CLAWOPS_GATEWAY_TOKEN_FROM";
pub const ENV_POD_NAMESPACE: &str = "POD_NAMESPACE";
pub const ENV_AGENT: &str = "CLAWOPS_AGENT";

/// The ClusterRole bound to gateways with `clusterAccess: read`. The chart installs it (so
/// `helm uninstall` removes it); the operator only checks it exists and binds to it.
pub const CLUSTER_READER_ROLE: &str = "clawops-cluster-reader";

/// The ClusterRole that lets a gateway read pod logs, bound only to Agents that opt in with
/// `spec.tools.podLogs` (logs can hold secrets). Installed by the chart with the reader.
pub const POD_LOG_READER_ROLE: &str = "clawops-pod-log-reader";

/// Containers of the gateway pod, named in status messages.
pub const CONTAINER_GATEWAY: &str = "gateway";
pub const CONTAINER_TAILSCALE: &str = "tailscale";
/// The Tailscale sidecar's default image: a released version, not the moving `stable` tag, which
/// a node that already has it never pulls again (`IfNotPresent`) and two nodes may resolve to
/// two versions. v1.98.9 is the newest stable release we know of (1.98 line; several
/// vulnerability fixes); override per Agent with `spec.gateway.expose.tailscale.image`.
pub const TAILSCALE_IMAGE: &str = "ghcr.io/tailscale/tailscale:v1.98.9";

/// Runs as this non-root user in every container of ours.
pub const RUN_AS_USER: i64 = 65532;
