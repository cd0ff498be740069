//! The Agent controller: resolve → validate → build → apply → status, for one Agent.

pub mod resolve;
pub mod status;
pub mod validate;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::apply::{self, ApplyError, Change};
use super::context::Context;
use crate::build::{self, BuildInputs, GatewayObjects, meta, rbac};
use crate::conditions;
use crate::consts::*;
use crate::crd::{Agent, AgentStatus, CommonStatus};
use resolve::{ResolveError, Resolved};
use status::Observed;
use validate::Problem;

/// Requeue while secrets or spec are refused: unlabeled Secrets are not watched.
pub const REQUEUE_REFUSED: Duration = Duration::from_secs(10);
/// Requeue while the gateway is not ready yet.
pub const REQUEUE_PENDING: Duration = Duration::from_secs(30);
/// Periodic resync of a ready Agent.
pub const REQUEUE_READY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("writing status of Agent {agent}: {source}")]
    Status { agent: String, source: kube::Error },
    #[error("finalizer of Agent: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

pub async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api = Api::<Agent>::namespaced(ctx.client.clone(), &agent.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, agent, |event| async {
        match event {
            Finalizer::Apply(agent) => reconcile_agent(agent, &ctx).await,
            Finalizer::Cleanup(agent) => cleanup(agent, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn reconcile_agent(agent: Arc<Agent>, ctx: &Context) -> Result<Action, Error> {
    let resolved = resolve::resolve(&ctx.client, agent.clone()).await?;
    let (problems, changes) = match validate::validate(&resolved) {
        Err(problems) => (problems, Vec::new()),
        Ok(valid) => {
            for (cron, why) in &valid.skipped_crons {
                tracing::debug!(agent = %status::key(&agent), cron, why, "cron left out");
            }
            let objects = build::build_all(&BuildInputs {
                agent: &agent,
                channels: &valid.channels,
                crons: &valid.crons,
                image: &ctx.image,
                secret_digest: &valid.secret_digest,
            });
            (Vec::new(), apply_all(ctx, &resolved, &objects).await?)
        }
    };
    let observed = observe(ctx, &agent).await?;
    let decision = status::decide(&agent, &problems, &observed);
    let status_changed = write_status(ctx, &agent, &decision).await?;

    if !changes.is_empty() {
        let note = changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(agent = %status::key(&agent), %note, "applied");
        ctx.event(&*agent, EventType::Normal, "Applied", "Apply", note)
            .await;
    }
    if !problems.is_empty() && status_changed {
        let (reason, what) = if problems.iter().any(Problem::is_secret) {
            ("SecretsUnresolved", "secret references")
        } else {
            ("InvalidSpec", "spec")
        };
        let note = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!(agent = %status::key(&agent), %note, "refused: {what}");
        ctx.event(&*agent, EventType::Warning, reason, "Validate", note)
            .await;
    }
    let ready = decision.conditions.first().is_some_and(|c| c.status);
    Ok(Action::requeue(if !problems.is_empty() {
        REQUEUE_REFUSED
    } else if ready {
        REQUEUE_READY
    } else {
        REQUEUE_PENDING
    }))
}

/// Applies every object, creates the once-only ones, and prunes what the spec dropped.
async fn apply_all(
    ctx: &Context,
    resolved: &Resolved,
    o: &GatewayObjects,
) -> Result<Vec<Change>, Error> {
    let agent = &*resolved.agent;
    let ns = agent.namespace().unwrap_or_default();
    let c = &ctx.client;
    let mut changes = Vec::new();
    let mut note = |c: Option<Change>| changes.extend(c);

    if let Some(token) = &resolved.new_token {
        note(
            apply::create(
                &Api::<Secret>::namespaced(c.clone(), &ns),
                &build::secrets::token_secret(agent, token),
            )
            .await?,
        );
    }
    note(
        apply::apply(
            &Api::<ServiceAccount>::namespaced(c.clone(), &ns),
            o.service_account.clone(),
        )
        .await?,
    );
    note(apply::apply(&Api::<Role>::namespaced(c.clone(), &ns), o.role.clone()).await?);
    note(
        apply::apply(
            &Api::<RoleBinding>::namespaced(c.clone(), &ns),
            o.role_binding.clone(),
        )
        .await?,
    );
    let crbs = Api::<ClusterRoleBinding>::all(c.clone());
    match &o.cluster_role_binding {
        Some(crb) => {
            note(
                apply::apply(
                    &Api::<ClusterRole>::all(c.clone()),
                    rbac::cluster_reader_role(),
                )
                .await?,
            );
            note(apply::apply(&crbs, crb.clone()).await?);
        }
        None => note(apply::delete(&crbs, &meta::cluster_binding_name(agent)).await?),
    }
    note(
        apply::apply(
            &Api::<ConfigMap>::namespaced(c.clone(), &ns),
            o.config_map.clone(),
        )
        .await?,
    );
    if let Some(cm) = &o.tailscale_serve {
        note(apply::apply(&Api::<ConfigMap>::namespaced(c.clone(), &ns), cm.clone()).await?);
    }
    if let Some(s) = &o.tailscale_state {
        note(apply::create_once(&Api::<Secret>::namespaced(c.clone(), &ns), s).await?);
    }
    note(
        apply::apply(
            &Api::<PersistentVolumeClaim>::namespaced(c.clone(), &ns),
            o.pvc.clone(),
        )
        .await?,
    );
    note(
        apply::apply(
            &Api::<Deployment>::namespaced(c.clone(), &ns),
            o.deployment.clone(),
        )
        .await?,
    );
    note(
        apply::apply(
            &Api::<Service>::namespaced(c.clone(), &ns),
            o.service.clone(),
        )
        .await?,
    );
    if let Some(i) = &o.ingress {
        note(apply::apply(&Api::<Ingress>::namespaced(c.clone(), &ns), i.clone()).await?);
    }
    if let Some(np) = &o.network_policy {
        note(
            apply::apply(
                &Api::<NetworkPolicy>::namespaced(c.clone(), &ns),
                np.clone(),
            )
            .await?,
        );
    }
    for cj in &o.cron_jobs {
        note(apply::apply(&Api::<CronJob>::namespaced(c.clone(), &ns), cj.clone()).await?);
    }

    // Prune the kinds whose objects come and go with the spec.
    let selector = meta::instance_selector(&agent.name_any());
    let names = |it: &mut dyn Iterator<Item = String>| it.collect::<BTreeSet<String>>();
    changes.extend(
        apply::prune(
            &Api::<CronJob>::namespaced(c.clone(), &ns),
            &selector,
            &names(&mut o.cron_jobs.iter().map(|j| j.name_any())),
        )
        .await?,
    );
    changes.extend(
        apply::prune(
            &Api::<Ingress>::namespaced(c.clone(), &ns),
            &selector,
            &names(&mut o.ingress.iter().map(|i| i.name_any())),
        )
        .await?,
    );
    changes.extend(
        apply::prune(
            &Api::<NetworkPolicy>::namespaced(c.clone(), &ns),
            &selector,
            &names(&mut o.network_policy.iter().map(|n| n.name_any())),
        )
        .await?,
    );
    let config_maps = std::iter::once(o.config_map.name_any())
        .chain(o.tailscale_serve.iter().map(|c| c.name_any()));
    changes.extend(
        apply::prune(
            &Api::<ConfigMap>::namespaced(c.clone(), &ns),
            &selector,
            &names(&mut config_maps.into_iter()),
        )
        .await?,
    );
    // The generated token survives every spec change; the Tailscale state goes with the sidecar.
    let secrets = std::iter::once(meta::token_secret_name(agent))
        .chain(o.tailscale_state.iter().map(|s| s.name_any()));
    changes.extend(
        apply::prune(
            &Api::<Secret>::namespaced(c.clone(), &ns),
            &selector,
            &names(&mut secrets.into_iter()),
        )
        .await?,
    );
    Ok(changes)
}

/// Reads the live objects that status is decided from.
async fn observe(ctx: &Context, agent: &Agent) -> Result<Observed, Error> {
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
    let deployment = Api::<Deployment>::namespaced(c.clone(), &ns)
        .get_opt(&gw)
        .await
        .map_err(read("Deployment", gw.clone()))?;
    let expose = agent.spec.gateway.expose.as_ref();
    let ingress = if build::network::ingress(agent).is_some() {
        Api::<Ingress>::namespaced(c.clone(), &ns)
            .get_opt(&gw)
            .await
            .map_err(read("Ingress", gw.clone()))?
    } else {
        None
    };
    let tailscale_state = if expose.and_then(|e| e.tailscale.as_ref()).is_some()
        && rbac::uses_tailscale_sidecar(agent)
    {
        let name = meta::tailscale_state_name(agent);
        Api::<Secret>::namespaced(c.clone(), &ns)
            .get_opt(&name)
            .await
            .map_err(read("Secret", name))?
    } else {
        None
    };
    Ok(Observed {
        deployment,
        ingress,
        tailscale_state,
    })
}

/// Writes status when it differs from the live one; returns whether it wrote.
async fn write_status(
    ctx: &Context,
    agent: &Agent,
    decision: &status::Decision,
) -> Result<bool, Error> {
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
        token_secret: Some(build::secrets::token_ref(agent).name),
    };
    if next == previous {
        return Ok(false);
    }
    let api = Api::<Agent>::namespaced(ctx.client.clone(), &agent.namespace().unwrap_or_default());
    api.patch_status(
        &agent.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": next })),
    )
    .await
    .map_err(|source| Error::Status {
        agent: status::key(agent),
        source,
    })?;
    Ok(true)
}

/// Deletion: namespaced objects go with their owner reference; the cluster-scoped binding
/// needs deleting here.
async fn cleanup(agent: Arc<Agent>, ctx: &Context) -> Result<Action, Error> {
    let crbs = Api::<ClusterRoleBinding>::all(ctx.client.clone());
    if let Some(change) = apply::delete(&crbs, &meta::cluster_binding_name(&agent)).await? {
        tracing::info!(agent = %status::key(&agent), %change, "cleaned up");
    }
    Ok(Action::await_change())
}
