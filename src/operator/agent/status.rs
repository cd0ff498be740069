//! Status: decide the Agent's conditions and URL from what validation found and what the
//! cluster shows (pure), then write status only when it changed.

pub mod backup;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::pods::{self, Diagnosis, PodFacts};
use crate::conditions::{self, Cond};
use crate::consts::*;
use crate::crd::backup::BackupStatus;
use crate::crd::{Agent, AgentStatus, CommonStatus, Exposure};
use crate::operator::context::Context;
use crate::plan::build::{self, meta, network};
use crate::plan::validate::Problem;

/// Ready's reason while `clusterAccess: read` cannot be bound.
pub const READY_READER_MISSING: &str = "ClusterReaderMissing";

/// Live objects that tell whether the gateway runs and is reachable.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub deployment: Option<Deployment>,
    pub ingress: Option<Ingress>,
    pub tailscale_state: Option<Secret>,
    /// The gateway's pods and claim, read only while its Deployment is not rolled out.
    pub pods: Option<PodFacts>,
    /// `clusterAccess: read` asks for a ClusterRole that is not there (the chart installs it).
    /// The chart's ClusterRoles the Agent needs bound that do not exist.
    pub missing_cluster_roles: Vec<&'static str>,
    /// Why the first rollout waits, when it does.
    pub held: Option<String>,
    /// With `spec.backup`: its CronJob, as the CronJob controller reports it, and the Job of
    /// its last scheduled run.
    pub backup_cron_job: Option<CronJob>,
    pub backup_job: Option<Job>,
    /// When the objects were read.
    pub now: Timestamp,
}

/// The decided status, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub conditions: Vec<Cond>,
    pub url: Option<String>,
    /// Everything was applied, so the token Secret exists.
    pub applied: bool,
    /// With `spec.backup`: what its CronJob reports.
    pub backup: Option<BackupStatus>,
    /// When to look again though nothing changes: the moment the backups become overdue.
    pub recheck_in: Option<std::time::Duration>,
}

/// Decides status from validation `problems` (and those of the backup's Secret keys), an
/// apply `failure`, and the live objects.
pub fn decide(
    agent: &Agent,
    problems: &[Problem],
    backup_problems: &[Problem],
    failure: Option<&str>,
    observed: &Observed,
) -> Decision {
    let secrets: Vec<String> = problems
        .iter()
        .filter(|p| p.is_secret())
        .map(ToString::to_string)
        .collect();
    let spec: Vec<String> = problems
        .iter()
        .filter(|p| !p.is_secret())
        .map(ToString::to_string)
        .collect();
    let secrets_cond = if secrets.is_empty() {
        Cond::is_true(
            CONDITION_SECRETS_RESOLVED,
            "AllResolved",
            "every referenced Secret key is set",
        )
    } else {
        Cond::is_false(
            CONDITION_SECRETS_RESOLVED,
            "SecretInvalid",
            format!(
                "{}; the running gateway is left as it was",
                secrets.join("; ")
            ),
        )
    };
    let diagnosis = observed.pods.as_ref().map(pods::diagnose);
    let available = match (&observed.deployment, &observed.held) {
        (None, Some(why)) => Cond::is_false(
            CONDITION_GATEWAY_AVAILABLE,
            "WaitingForChannel",
            why.clone(),
        ),
        (deployment, _) => gateway_available(agent, deployment.as_ref(), diagnosis.as_ref()),
    };
    let (exposed, url) = exposure(agent, observed, diagnosis.as_ref());
    let reader = (!observed.missing_cluster_roles.is_empty()).then(|| {
        let roles = observed.missing_cluster_roles.join(" and ");
        let turn_off = if observed.missing_cluster_roles == [POD_LOG_READER_ROLE] {
            "set tools.podLogs: false"
        } else {
            "set clusterAccess: none"
        };
        Cond::is_false(
            CONDITION_READY,
            READY_READER_MISSING,
            format!(
                "clusterAccess: read needs the ClusterRole {roles}, which does not exist; the \
                 clawops chart installs it (rbac.create: true), so upgrade or reinstall the chart \
                 or apply manifests/install.yaml again, or {turn_off}; the gateway runs without \
                 its cluster view until then"
            ),
        )
    });
    let ready = if !spec.is_empty() {
        Cond::is_false(CONDITION_READY, "InvalidSpec", spec.join("; "))
    } else if let Some(failure) = failure {
        Cond::is_false(
            CONDITION_READY,
            "ApplyFailed",
            format!("{failure}; the operator retries"),
        )
    } else if let Some(not) = [
        Some(&secrets_cond),
        reader.as_ref(),
        Some(&available),
        Some(&exposed),
    ]
    .into_iter()
    .flatten()
    .find(|c| !c.status)
    {
        Cond::is_false(CONDITION_READY, not.reason.clone(), not.message.clone())
    } else {
        Cond::is_true(
            CONDITION_READY,
            "GatewayReady",
            format!(
                "the gateway is running and reachable at {}",
                url.as_deref().unwrap_or("its Service")
            ),
        )
    };
    let mut conditions = vec![ready, secrets_cond, exposed, available];
    // Backups are told beside Ready, not in it: the gateway answers whether or not they work.
    let backup_problems: Vec<String> = backup_problems.iter().map(ToString::to_string).collect();
    let backup = backup::decide(
        agent,
        &backup_problems,
        observed.backup_cron_job.as_ref(),
        observed.backup_job.as_ref(),
        &observed.now,
    )
    .map(|(cond, status)| {
        conditions.push(cond);
        status
    });
    let recheck_in = backup.as_ref().and_then(|b| {
        backup::recheck_in(agent, b, observed.backup_cron_job.as_ref(), &observed.now)
    });
    Decision {
        conditions,
        url,
        applied: problems.is_empty() && failure.is_none(),
        backup,
        recheck_in,
    }
}

/// The Deployment has a pod of its current template ready: nothing more to look at. Until then
/// the gateway's pods are read to say why not.
pub fn rolled_out(d: &Deployment) -> bool {
    let status = d.status.clone().unwrap_or_default();
    let current =
        d.metadata.generation.is_some() && status.observed_generation >= d.metadata.generation;
    status.available_replicas.unwrap_or(0) >= 1
        && current
        && status.updated_replicas.unwrap_or(0) >= 1
}

fn gateway_available(
    agent: &Agent,
    deployment: Option<&Deployment>,
    diagnosis: Option<&Diagnosis>,
) -> Cond {
    let name = meta::gateway_name(agent);
    let Some(d) = deployment else {
        return Cond::is_false(
            CONDITION_GATEWAY_AVAILABLE,
            "NotCreated",
            format!("Deployment {name} does not exist yet"),
        );
    };
    if rolled_out(d) {
        return Cond::is_true(
            CONDITION_GATEWAY_AVAILABLE,
            "MinimumReplicasAvailable",
            format!("Deployment {name} has its pod ready"),
        );
    }
    if let Some(dx) = diagnosis.filter(|dx| !dx.troubles.is_empty()) {
        let what: Vec<&str> = dx.troubles.iter().map(|t| t.message.as_str()).collect();
        let pod = dx
            .pod
            .as_ref()
            .map_or(format!("deployment {name}"), |p| format!("pod {p}"));
        return Cond::is_false(
            CONDITION_GATEWAY_AVAILABLE,
            dx.troubles[0].reason,
            format!("{}; see kubectl describe {pod}", what.join("; ")),
        );
    }
    // No pod to blame: the ReplicaSet may not be able to create one (quota, admission), which
    // the Deployment reports as ReplicaFailure=True; otherwise its first False condition.
    let conditions = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let why = conditions
        .iter()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        .or_else(|| conditions.iter().find(|c| c.status == "False"))
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "the gateway pod is not ready yet".into());
    Cond::is_false(
        CONDITION_GATEWAY_AVAILABLE,
        "Unavailable",
        format!("Deployment {name}: {why}; see kubectl describe deployment {name}"),
    )
}

fn ingress_address(ingress: Option<&Ingress>) -> Option<String> {
    ingress?
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .iter()
        .find_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
}

fn exposure(
    agent: &Agent,
    observed: &Observed,
    diagnosis: Option<&Diagnosis>,
) -> (Cond, Option<String>) {
    let exposure = agent.spec.gateway.exposure();
    match &exposure {
        Exposure::Ingress(ing) => {
            let url = exposure.configured_url();
            match ingress_address(observed.ingress.as_ref()) {
                Some(addr) => (
                    Cond::is_true(
                        CONDITION_EXPOSED,
                        "IngressReady",
                        format!("Ingress for {} has address {addr}", ing.host),
                    ),
                    url,
                ),
                None => (
                    Cond::is_false(
                        CONDITION_EXPOSED,
                        "IngressPending",
                        format!(
                            "waiting for the ingress controller (class {}) to admit host {}",
                            ing.class_name, ing.host
                        ),
                    ),
                    url,
                ),
            }
        }
        Exposure::TailscaleSidecar(ts) => {
            let fqdn = observed
                .tailscale_state
                .as_ref()
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get("device_fqdn"))
                .map(|b| {
                    String::from_utf8_lossy(&b.0)
                        .trim_end_matches('.')
                        .to_string()
                })
                .filter(|s| !s.is_empty());
            match fqdn {
                Some(fqdn) => tailnet_joined(&ts.hostname, &fqdn),
                None => (sidecar_pending(agent, &ts.hostname, diagnosis), None),
            }
        }
        Exposure::TailscaleOperator(ts) => match ingress_address(observed.ingress.as_ref()) {
            Some(fqdn) => tailnet_joined(&ts.hostname, &fqdn),
            None => (
                Cond::is_false(
                    CONDITION_EXPOSED,
                    "TailscalePending",
                    format!(
                        "waiting for the Tailscale operator to expose {} (is it installed?)",
                        ts.hostname
                    ),
                ),
                None,
            ),
        },
        Exposure::None => (
            Cond::is_true(
                CONDITION_EXPOSED,
                "ClusterInternal",
                "no exposure requested; reachable inside the cluster",
            ),
            Some(network::service_url(agent)),
        ),
    }
}

fn tailnet_joined(hostname: &str, fqdn: &str) -> (Cond, Option<String>) {
    (
        Cond::is_true(
            CONDITION_EXPOSED,
            "TailnetJoined",
            format!("{hostname} is on the tailnet as {fqdn}"),
        ),
        Some(format!("https://{fqdn}")),
    )
}

/// The sidecar has not joined the tailnet. Only once it runs can the auth key be the reason
/// (and only then are there logs to read); before that, whatever stops it from running is.
fn sidecar_pending(agent: &Agent, hostname: &str, diagnosis: Option<&Diagnosis>) -> Cond {
    let blocking: Vec<&pods::Trouble> = diagnosis
        .into_iter()
        .flat_map(|dx| dx.blocking(CONTAINER_TAILSCALE))
        .collect();
    if let Some(first) = blocking.first() {
        let what: Vec<&str> = blocking.iter().map(|t| t.message.as_str()).collect();
        return Cond::is_false(
            CONDITION_EXPOSED,
            first.reason,
            format!(
                "the Tailscale sidecar cannot join the tailnet as {hostname} because it is not \
                 running: {}",
                what.join("; ")
            ),
        );
    }
    // Pods unread means the Deployment is rolled out, so the sidecar runs.
    if diagnosis.is_some_and(|dx| !dx.has_started(CONTAINER_TAILSCALE)) {
        return Cond::is_false(
            CONDITION_EXPOSED,
            "TailscaleStarting",
            format!(
                "waiting for the Tailscale sidecar to start, then to join the tailnet as {hostname}"
            ),
        );
    }
    Cond::is_false(
        CONDITION_EXPOSED,
        "TailscalePending",
        format!(
            "the Tailscale sidecar runs but has not joined the tailnet as {hostname}; check the \
             auth key and kubectl logs deploy/{} -c {CONTAINER_TAILSCALE}",
            meta::gateway_name(agent)
        ),
    )
}

/// For messages: `namespace/name` of any object.
pub fn key(obj: &impl ResourceExt) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Writes status when it differs from the live one; returns whether it wrote.
pub async fn write_status(
    ctx: &Context,
    agent: &Agent,
    decision: &Decision,
) -> Result<bool, super::Error> {
    let previous = agent.status.clone().unwrap_or_default();
    let generation = agent.metadata.generation;
    let next = AgentStatus {
        common: CommonStatus {
            observed_generation: generation,
            conditions: conditions::merge(
                &previous.common.conditions,
                &decision.conditions,
                generation,
                Timestamp::now(),
            ),
        },
        url: decision.url.clone(),
        // Named once it exists; a refused Agent may never have had its token generated.
        token_secret: previous.token_secret.clone().or_else(|| {
            decision
                .applied
                .then(|| build::secrets::token_ref(agent).name)
        }),
        backup: decision.backup.clone(),
    };
    if next == previous {
        return Ok(false);
    }
    let api = Api::<Agent>::namespaced(ctx.client.clone(), &agent.namespace().unwrap_or_default());
    api.patch_status(
        &agent.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status_patch(&next) })),
    )
    .await
    .map_err(|source| super::Error::Status {
        agent: key(agent),
        source,
    })?;
    Ok(true)
}

/// The status as a merge patch: fields that became empty are sent as `null`, which removes
/// them; omitting them would leave the old value and make every later reconcile write again.
fn status_patch(status: &AgentStatus) -> serde_json::Value {
    fn nulls(object: &mut serde_json::Value, fields: &[&str]) {
        let object = object.as_object_mut().expect("an object");
        for field in fields {
            object.entry(*field).or_insert(serde_json::Value::Null);
        }
    }
    let mut body = serde_json::to_value(status).expect("status serializes");
    nulls(
        &mut body,
        &["url", "tokenSecret", "observedGeneration", "backup"],
    );
    if let Some(backup) = body.get_mut("backup").filter(|b| b.is_object()) {
        nulls(backup, &["lastScheduleTime", "lastSuccessfulTime"]);
    }
    body
}

#[cfg(test)]
mod tests;
