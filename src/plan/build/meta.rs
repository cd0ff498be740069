//! Names, labels, owner references and metadata shared by every generated object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use sha2::{Digest, Sha256};

use crate::consts::*;
use crate::crd::Agent;
use crate::util::hex;

/// `<agent>-<suffix>`, shortened with a hash when longer than `max` (63 fits every kind we make,
/// 52 is the CronJob limit).
pub fn child_name(agent: &str, suffix: &str, max: usize) -> String {
    let full = format!("{agent}-{suffix}");
    if full.len() <= max {
        return full;
    }
    let hash = hex(&Sha256::digest(full.as_bytes()))[..8].to_string();
    let keep = max - hash.len() - 1;
    let mut head: String = full.chars().take(keep).collect();
    while head.ends_with(['-', '.']) || head.len() > keep {
        head.pop();
    }
    format!("{head}-{hash}")
}

/// Name of a gateway object of an Agent (Deployment, Service, ServiceAccount, Role, Ingress…).
pub fn gateway_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "gateway", 63)
}
pub fn config_map_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "gateway-config", 63)
}
pub fn token_secret_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "gateway-token", 63)
}
pub fn state_pvc_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "gateway-state", 63)
}
pub fn tls_secret_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "gateway-tls", 63)
}
pub fn tailscale_state_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "tailscale-state", 63)
}
pub fn tailscale_serve_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "tailscale-serve", 63)
}
/// The ServiceAccount, Role and RoleBinding of the Agent's Cron runs.
pub fn cron_runner_name(agent: &Agent) -> String {
    child_name(&agent.name_any(), "cron", 63)
}
pub fn cron_job_name(agent: &Agent, cron: &str) -> String {
    child_name(&agent.name_any(), cron, 52)
}
/// The CronJob of `spec.backup`; a Cron named `backup` would get the same name, so such a Cron
/// is refused while the Agent has backups.
pub fn backup_cron_job_name(agent: &Agent) -> String {
    cron_job_name(agent, COMPONENT_BACKUP)
}
/// Cluster-scoped, so it carries the namespace.
pub fn cluster_binding_name(agent: &Agent) -> String {
    cluster_scoped_name(agent, "reader")
}

/// The binding to the pod log reader; cluster-scoped like the reader's.
pub fn pod_log_binding_name(agent: &Agent) -> String {
    cluster_scoped_name(agent, "pod-logs")
}

fn cluster_scoped_name(agent: &Agent, what: &str) -> String {
    let ns = agent.namespace().unwrap_or_default();
    child_name(
        &format!("clawops-{ns}"),
        &format!("{}-{what}", agent.name_any()),
        253,
    )
}

/// Labels of every object generated for an Agent.
pub fn labels(agent: &Agent, component: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(agent, component);
    l.insert(LABEL_MANAGED_BY.into(), FIELD_MANAGER.into());
    l.insert(LABEL_PART_OF.into(), APP_NAME.into());
    l
}

/// The labels that select an Agent's pods of one component.
pub fn selector_labels(agent: &Agent, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.into(), APP_NAME.into()),
        (LABEL_INSTANCE.into(), agent.name_any()),
        (LABEL_COMPONENT.into(), component.into()),
    ])
}

pub fn selector(agent: &Agent, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(agent, component)),
        ..Default::default()
    }
}

/// The label selector that finds everything the operator generated for an Agent.
pub fn instance_selector(agent_name: &str) -> String {
    format!("{LABEL_INSTANCE}={agent_name},{LABEL_MANAGED_BY}={FIELD_MANAGER}")
}

/// The controller owner reference to the Agent. Agents read from files (`render`) have no uid,
/// and an owner reference without one is invalid, so those objects carry none.
pub fn owner_refs(agent: &Agent) -> Option<Vec<OwnerReference>> {
    agent.controller_owner_ref(&()).map(|o| vec![o])
}

/// Metadata of a namespaced object owned by the Agent.
pub fn object_meta(agent: &Agent, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: agent.namespace(),
        labels: Some(labels(agent, component)),
        owner_references: owner_refs(agent),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(child_name("shrimp", "gateway", 63), "shrimp-gateway");
    }

    #[test]
    fn long_names_are_shortened_stably_and_distinctly() {
        let agent = "a".repeat(60);
        let one = child_name(&agent, "morning-patrol", 52);
        let two = child_name(&agent, "evening-patrol", 52);
        assert!(one.len() <= 52 && two.len() <= 52, "{one} {two}");
        assert_ne!(one, two);
        assert_eq!(one, child_name(&agent, "morning-patrol", 52));
        assert!(!one.contains("--"));
        let dotted = child_name(&format!("{}.x", "b".repeat(43)), "gateway-config", 63);
        assert!(dotted.len() <= 63 && !dotted.contains(".-"), "{dotted}");
    }
}
