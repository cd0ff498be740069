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

use super::AgentPlan;

/// Every object of an Agent's gateway, except the generated token Secret, whose value is
/// decided once at the I/O edge (see [`secrets::token_secret`]).
#[derive(Clone, Debug)]
pub struct GatewayObjects {
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub cluster_role_binding: Option<ClusterRoleBinding>,
    /// With `tools.podLogs`: the binding to the pod log reader.
    pub pod_log_binding: Option<ClusterRoleBinding>,
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
    /// With `spec.backup`: the CronJob that backs the state up.
    pub backup_cron_job: Option<CronJob>,
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

/// Every object of the planned gateway, for the default `image` (the operator's own).
pub fn build_all(plan: &AgentPlan, image: &str) -> GatewayObjects {
    let agent = &*plan.agent;
    let exposure = &plan.exposure;
    let config_json = plan.config.to_json();
    let sidecar = exposure.sidecar();
    let tailscale_serve = sidecar.map(|t| tailscale::serve_config_map(agent, t));
    let serve_json = tailscale_serve
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.values().next().cloned())
        .unwrap_or_default();
    let hash = content_hash(&[&config_json, &serve_json, &plan.secret_digest]);
    GatewayObjects {
        service_account: rbac::service_account(agent),
        role: rbac::role(agent, exposure),
        role_binding: rbac::role_binding(agent),
        cluster_role_binding: rbac::cluster_role_binding(agent),
        pod_log_binding: rbac::pod_log_binding(agent),
        cron_service_account: rbac::cron_service_account(agent),
        cron_role: rbac::cron_role(agent, &plan.crons),
        cron_role_binding: rbac::cron_role_binding(agent),
        config_map: config_map::gateway_config_map(agent, &config_json),
        tailscale_serve,
        tailscale_state: sidecar.map(|_| secrets::tailscale_state_secret(agent)),
        pvc: storage::state_pvc(agent),
        deployment: deployment::deployment(agent, &plan.channels, exposure, image, &hash),
        service: network::service(agent),
        ingress: network::ingress(agent, exposure),
        network_policy: network::network_policy(agent, exposure),
        cron_jobs: plan
            .crons
            .iter()
            .map(|c| cron_job::cron_job(agent, c, image))
            .collect(),
        backup_cron_job: agent
            .spec
            .backup
            .as_ref()
            .map(|b| cron_job::backup_cron_job(agent, b, image)),
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
        out.extend(self.pod_log_binding.iter().map(v));
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
        out.extend(self.backup_cron_job.iter().map(v));
        out
    }
}

#[cfg(test)]
mod backup_tests;
#[cfg(test)]
mod tests;
