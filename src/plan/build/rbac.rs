//! The gateway's ServiceAccount, Role and RoleBinding, the Cron runner's, and the read-only
//! cluster view.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::meta;
use crate::consts::*;
use crate::crd::agent::ClusterAccess;
use crate::crd::{Agent, Cron, Exposure};

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let v = |xs: &[&str]| Some(xs.iter().map(|s| s.to_string()).collect());
    PolicyRule {
        api_groups: v(groups),
        resources: v(resources),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn service_account(agent: &Agent) -> ServiceAccount {
    ServiceAccount {
        metadata: meta::object_meta(agent, meta::gateway_name(agent), COMPONENT_GATEWAY),
        automount_service_account_token: Some(true),
        ..Default::default()
    }
}

/// What the gateway may do in its namespace: read its Channels and Crons and mirror pairing and
/// cron state into their status; keep a watched cache of the NodePairings (list, watch), create
/// one for a node asking to pair (and delete it when the owner rejects the request), patch its
/// `approved` and `exec` when the owner answers or edits from the CLI, Telegram or the Control
/// UI, and patch its status with the connection; and emit Events.
/// With the Tailscale sidecar, what containerboot needs on its pre-created state Secret.
pub fn role(agent: &Agent, exposure: &Exposure) -> Role {
    let mut rules = vec![
        rule(
            &["clawops.dev"],
            &["agents", "channels", "crons"],
            &["get", "list", "watch"],
        ),
        rule(
            &["clawops.dev"],
            &["channels/status", "crons/status"],
            &["get", "patch", "update"],
        ),
        rule(
            &["clawops.dev"],
            &["nodepairings"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        rule(&["clawops.dev"], &["nodepairings/status"], &["patch"]),
        rule(&["", "events.k8s.io"], &["events"], &["create", "patch"]),
    ];
    if exposure.sidecar().is_some() {
        let mut state = rule(&[""], &["secrets"], &["get", "update", "patch"]);
        state.resource_names = Some(vec![meta::tailscale_state_name(agent)]);
        rules.push(state);
        rules.push(rule(&[""], &["events"], &["get"]));
    }
    Role {
        metadata: meta::object_meta(agent, meta::gateway_name(agent), COMPONENT_GATEWAY),
        rules: Some(rules),
    }
}

pub fn role_binding(agent: &Agent) -> RoleBinding {
    binding(agent, meta::gateway_name(agent), COMPONENT_GATEWAY)
}

/// Binds the Role of `name` to the ServiceAccount of the same name.
fn binding(agent: &Agent, name: String, component: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta::object_meta(agent, name.clone(), component),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(vec![subject(agent, name)]),
    }
}

fn subject(agent: &Agent, service_account: String) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: service_account,
        namespace: agent.namespace(),
        api_group: None,
    }
}

fn gateway_subject(agent: &Agent) -> Subject {
    subject(agent, meta::gateway_name(agent))
}

/// The identity of the Agent's Cron runs. `clawops cron run` records a failed run on its Cron
/// itself: a failed run often means the gateway is unreachable, so the gateway cannot.
pub fn cron_service_account(agent: &Agent) -> ServiceAccount {
    ServiceAccount {
        metadata: meta::object_meta(agent, meta::cron_runner_name(agent), COMPONENT_CRON),
        automount_service_account_token: Some(true),
        ..Default::default()
    }
}

/// Exactly what a Cron run does: read and patch the status of this Agent's Crons, by name, and
/// create a Warning Event on a failure. Without Crons there is no status rule at all: an empty
/// `resourceNames` would allow every Cron.
pub fn cron_role(agent: &Agent, crons: &[Cron]) -> Role {
    let mut rules = Vec::new();
    if !crons.is_empty() {
        let mut status = rule(&["clawops.dev"], &["crons/status"], &["get", "patch"]);
        let mut names: Vec<String> = crons.iter().map(ResourceExt::name_any).collect();
        names.sort();
        status.resource_names = Some(names);
        rules.push(status);
    }
    rules.push(rule(&["events.k8s.io"], &["events"], &["create"]));
    Role {
        metadata: meta::object_meta(agent, meta::cron_runner_name(agent), COMPONENT_CRON),
        rules: Some(rules),
    }
}

pub fn cron_role_binding(agent: &Agent) -> RoleBinding {
    binding(agent, meta::cron_runner_name(agent), COMPONENT_CRON)
}

/// Labels of the ClusterRoles the chart installs.
fn chart_labels() -> std::collections::BTreeMap<String, String> {
    [
        (LABEL_NAME, APP_NAME),
        (LABEL_MANAGED_BY, FIELD_MANAGER),
        (LABEL_PART_OF, APP_NAME),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The read-only view of the cluster that patrols and the assistant's cluster tools need:
/// nodes and their metrics, workloads, networking, storage, events, cert-manager Certificates,
/// and ConfigMaps (the tools show their keys, never their values). No write verb, and no
/// Secrets.
pub fn cluster_reader_role() -> ClusterRole {
    let read = &["get", "list", "watch"];
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(CLUSTER_READER_ROLE.into()),
            labels: Some(chart_labels()),
            ..Default::default()
        },
        rules: Some(vec![
            rule(
                &[""],
                &[
                    "nodes",
                    "pods",
                    "persistentvolumeclaims",
                    "persistentvolumes",
                    "namespaces",
                    "services",
                    "events",
                ],
                read,
            ),
            rule(
                &["apps"],
                &["deployments", "statefulsets", "daemonsets", "replicasets"],
                read,
            ),
            rule(&["batch"], &["jobs", "cronjobs"], read),
            // The cluster tools: Ingresses (k8s_list/k8s_get) and ConfigMaps (their keys only).
            rule(&["networking.k8s.io"], &["ingresses"], read),
            rule(&[""], &["configmaps"], read),
            rule(&["events.k8s.io"], &["events"], read),
            rule(&["metrics.k8s.io"], &["nodes", "pods"], &["get", "list"]),
            // Certificate expiry from cert-manager's Certificate status. Secrets are deliberately
            // absent: listing them would hand every secret value in the cluster to the gateway.
            rule(&["cert-manager.io"], &["certificates"], read),
        ]),
        aggregation_rule: None,
    }
}

/// Binds the gateway's ServiceAccount to the cluster reader role. Cluster-scoped objects cannot
/// be owned by a namespaced Agent, so the Agent's finalizer deletes it.
pub fn cluster_role_binding(agent: &Agent) -> Option<ClusterRoleBinding> {
    (agent.spec.cluster_access == ClusterAccess::Read).then(|| {
        bind_cluster_role(
            agent,
            meta::cluster_binding_name(agent),
            CLUSTER_READER_ROLE,
        )
    })
}

/// Pod logs can hold secrets: read only by the gateways of Agents that opt in
/// (`spec.tools.podLogs`, with `clusterAccess: read`), through a role of its own.
pub fn pod_log_reader_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(POD_LOG_READER_ROLE.into()),
            labels: Some(chart_labels()),
            ..Default::default()
        },
        rules: Some(vec![rule(&[""], &["pods/log"], &["get"])]),
        aggregation_rule: None,
    }
}

/// Binds the gateway to the pod log reader when its Agent opts in.
pub fn pod_log_binding(agent: &Agent) -> Option<ClusterRoleBinding> {
    (agent.spec.cluster_access == ClusterAccess::Read && agent.spec.tools.pod_logs).then(|| {
        bind_cluster_role(
            agent,
            meta::pod_log_binding_name(agent),
            POD_LOG_READER_ROLE,
        )
    })
}

fn bind_cluster_role(agent: &Agent, name: String, role: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(meta::labels(agent, COMPONENT_GATEWAY)),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![gateway_subject(agent)]),
    }
}
