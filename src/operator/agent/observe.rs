//! Observe: read the live objects an Agent's status is decided from — the Deployment, the
//! Ingress or Tailscale state its exposure makes, the backup CronJob with `spec.backup`, and
//! pods only while the gateway is not rolled out.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::Error;
use super::pods::PodFacts;
use super::status::{self, Observed};
use crate::consts::*;
use crate::crd::Agent;
use crate::operator::apply::ApplyError;
use crate::operator::context::Context;
use crate::plan::build::{self, meta};

/// Reads the live objects that status is decided from.
pub async fn observe(ctx: &Context, agent: &Agent) -> Result<Observed, Error> {
    let ns = agent.namespace().unwrap_or_default();
    let c = &ctx.client;
    let read = |kind: &str, name: String| {
        let kind = kind.to_string();
        move |source| {
            Error::Apply(ApplyError {
                action: "reading",
                kind,
                name,
                source,
            })
        }
    };
    let gw = meta::gateway_name(agent);
    let exposure = agent.spec.gateway.exposure();
    let deployment = async {
        Api::<Deployment>::namespaced(c.clone(), &ns)
            .get_opt(&gw)
            .await
            .map_err(read("Deployment", gw.clone()))
    };
    let ingress = async {
        if build::network::ingress(agent, &exposure).is_none() {
            return Ok(None);
        }
        Api::<Ingress>::namespaced(c.clone(), &ns)
            .get_opt(&gw)
            .await
            .map_err(read("Ingress", gw.clone()))
    };
    let tailscale_state = async {
        if exposure.sidecar().is_none() {
            return Ok(None);
        }
        let name = meta::tailscale_state_name(agent);
        Api::<Secret>::namespaced(c.clone(), &ns)
            .get_opt(&name)
            .await
            .map_err(read("Secret", name))
    };
    let backup_cron_job = async {
        if agent.spec.backup.is_none() {
            return Ok(None);
        }
        let name = meta::backup_cron_job_name(agent);
        Api::<CronJob>::namespaced(c.clone(), &ns)
            .get_opt(&name)
            .await
            .map_err(read("CronJob", name))
    };
    let (deployment, ingress, tailscale_state, backup_cron_job) =
        futures::try_join!(deployment, ingress, tailscale_state, backup_cron_job)?;
    // The Job of the backup CronJob's last scheduled run says how that run went.
    let backup_job = match backup_cron_job.as_ref().and_then(|cj| {
        Some((
            cj.metadata.name.as_deref()?,
            cj.status.as_ref()?.last_schedule_time.as_ref()?,
        ))
    }) {
        Some((cron_job, at)) => {
            let name = status::backup::job_name(cron_job, at);
            Api::<Job>::namespaced(c.clone(), &ns)
                .get_opt(&name)
                .await
                .map_err(read("Job", name))?
        }
        None => None,
    };
    // Pods only while the gateway is not rolled out: a healthy Agent costs no list.
    let pods = match &deployment {
        Some(d) if !status::rolled_out(d) => {
            let selector = meta::selector_labels(agent, COMPONENT_GATEWAY)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let pods = Api::<Pod>::namespaced(c.clone(), &ns)
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(read("Pod", format!("of {gw}")))?
                .items;
            let claim_name = meta::state_pvc_name(agent);
            let claim = Api::<PersistentVolumeClaim>::namespaced(c.clone(), &ns)
                .get_opt(&claim_name)
                .await
                .map_err(read("PersistentVolumeClaim", claim_name))?;
            Some(PodFacts { pods, claim })
        }
        _ => None,
    };
    Ok(Observed {
        deployment,
        ingress,
        tailscale_state,
        pods,
        missing_cluster_roles: Vec::new(),
        held: None,
        backup_cron_job,
        backup_job,
        now: k8s_openapi::jiff::Timestamp::now(),
    })
}
