//! Pure builders: typed inputs in, k8s-openapi objects out. The operator applies what they
//! return; `clawops render` prints it. No I/O happens here.

pub mod config_map;
pub mod cron_job;
pub mod deployment;
pub mod env;
pub mod meta;
pub mod network;
pub mod rbac;
pub mod secrets;
pub mod security;
pub mod storage;
pub mod tailscale;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::crd::{Agent, Channel, Cron};
use crate::plan::gateway_config::{self, ConfigInputs};

/// Everything the builders need, already resolved and validated.
pub struct BuildInputs<'a> {
    pub agent: &'a Agent,
    /// The Agent's valid Channels, sorted by name.
    pub channels: &'a [Channel],
    /// The Agent's valid Crons, sorted by name.
    pub crons: &'a [Cron],
    /// Default gateway image (the operator's own).
    pub image: &'a str,
    /// Digest of the values of every referenced Secret key (never the values).
    pub secret_digest: &'a str,
}

/// Every object of an Agent's gateway, except the generated token Secret, whose value is
/// decided once at the I/O edge (see [`secrets::token_secret`]).
#[derive(Clone, Debug)]
pub struct GatewayObjects {
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub cluster_role_binding: Option<ClusterRoleBinding>,
    /// The Cron runs' own identity, to record their failures on their Crons.
    pub cron_service_account: ServiceAccount,
    pub cron_role: Role,
    pub cron_role_binding: RoleBinding,
    pub config_map: ConfigMap,
    pub tailscale_serve: Option<ConfigMap>,
    /// Created once, never rewritten: containerboot owns its content.
    pub tailscale_state: Option<Secret>,
    pub pvc: PersistentVolumeClaim,
    pub deployment: Deployment,
    pub service: Service,
    pub ingress: Option<Ingress>,
    pub network_policy: Option<NetworkPolicy>,
    pub cron_jobs: Vec<CronJob>,
}

/// The gateway config file content for these inputs.
pub fn gateway_config_json(inputs: &BuildInputs<'_>) -> String {
    let trusted: &[&str] = if rbac::uses_tailscale_sidecar(inputs.agent) {
        &["127.0.0.1", "::1"]
    } else {
        &[]
    };
    use kube::ResourceExt;
    gateway_config::render(&ConfigInputs {
        agent: inputs.agent,
        channels: inputs.channels,
        crons: inputs.crons,
        public_url: network::configured_url(inputs.agent),
        extra_trusted_proxies: trusted,
        namespace: inputs.agent.namespace(),
    })
    .to_json()
}

/// Hash over the gateway config, the Tailscale serve config and the referenced secret data:
/// it goes on the pod template, so a change of any of them rolls the pod.
pub fn content_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    crate::util::hex(&h.finalize())
}

pub fn build_all(inputs: &BuildInputs<'_>) -> GatewayObjects {
    let agent = inputs.agent;
    let config_json = gateway_config_json(inputs);
    let ts = agent
        .spec
        .gateway
        .expose
        .as_ref()
        .and_then(|e| e.tailscale.as_ref())
        .filter(|_| rbac::uses_tailscale_sidecar(agent));
    let tailscale_serve = ts.map(|t| tailscale::serve_config_map(agent, t));
    let serve_json = tailscale_serve
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.values().next().cloned())
        .unwrap_or_default();
    let hash = content_hash(&[&config_json, &serve_json, inputs.secret_digest]);
    GatewayObjects {
        service_account: rbac::service_account(agent),
        role: rbac::role(agent),
        role_binding: rbac::role_binding(agent),
        cluster_role_binding: rbac::cluster_role_binding(agent),
        cron_service_account: rbac::cron_service_account(agent),
        cron_role: rbac::cron_role(agent, inputs.crons),
        cron_role_binding: rbac::cron_role_binding(agent),
        config_map: config_map::gateway_config_map(agent, &config_json),
        tailscale_serve,
        tailscale_state: ts.map(|_| secrets::tailscale_state_secret(agent)),
        pvc: storage::state_pvc(agent),
        deployment: deployment::deployment(agent, inputs.channels, inputs.image, &hash),
        service: network::service(agent),
        ingress: network::ingress(agent),
        network_policy: network::network_policy(agent),
        cron_jobs: inputs
            .crons
            .iter()
            .map(|c| cron_job::cron_job(agent, c, inputs.image))
            .collect(),
    }
}

impl GatewayObjects {
    /// All objects as JSON values, in apply order, for printing.
    pub fn to_values(&self) -> Vec<serde_json::Value> {
        fn v<T: Serialize>(t: &T) -> serde_json::Value {
            serde_json::to_value(t).expect("k8s objects serialize")
        }
        let mut out = vec![
            v(&self.service_account),
            v(&self.role),
            v(&self.role_binding),
        ];
        out.extend(self.cluster_role_binding.iter().map(v));
        out.push(v(&self.cron_service_account));
        out.push(v(&self.cron_role));
        out.push(v(&self.cron_role_binding));
        out.push(v(&self.config_map));
        out.extend(self.tailscale_serve.iter().map(v));
        out.extend(self.tailscale_state.iter().map(v));
        out.push(v(&self.pvc));
        out.push(v(&self.deployment));
        out.push(v(&self.service));
        out.extend(self.ingress.iter().map(v));
        out.extend(self.network_policy.iter().map(v));
        out.extend(self.cron_jobs.iter().map(v));
        out
    }
}

#[cfg(test)]
mod tests;
