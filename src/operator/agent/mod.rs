//! The Agent controller: fetch → plan → build → apply → observe → status, for one Agent.

pub mod apply;
pub mod fetch;
pub mod observe;
pub mod pods;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, ResourceExt};

use super::apply::ApplyError;
use super::context::Context;
use crate::conditions;
use crate::consts::*;
use crate::crd::Agent;
use crate::plan::build::{self, meta};
use crate::plan::validate::Problem;
use crate::plan::{self, RunsIn};
use fetch::ResolveError;
use status::READY_READER_MISSING;
use status::backup::BACKUP_FAILED;

/// Requeue while secrets or spec are refused: unlabeled Secrets are not watched.
pub const REQUEUE_REFUSED: Duration = Duration::from_secs(10);
/// Requeue while the gateway is not ready yet.
pub const REQUEUE_PENDING: Duration = Duration::from_secs(30);
/// Requeue while the cached Agent predates this operator's own status write.
pub const REQUEUE_STALE: Duration = Duration::from_secs(2);
/// Periodic resync of a ready Agent. Changes to it, its members, its labelled Secrets and the
/// objects the operator watches reconcile it at once; this pass only repairs drift no watch
/// sees (RBAC objects, the claim), so it is rare: at 1,000 Agents each pass costs a few
/// thousand reads.
pub const REQUEUE_READY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("writing status of Agent {agent}: {source}")]
    Status { agent: String, source: kube::Error },
    #[error("Agent {agent}: {source}")]
    Finalizer {
        agent: String,
        #[source]
        source: Box<kube::runtime::finalizer::Error<Error>>,
    },
}

impl Error {
    /// Every value of [`Error::metric_label`].
    pub const METRIC_LABELS: &[&str] = &["resolve", "apply", "status", "finalizer"];

    /// The kind of failure, as the `error` label of the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::Resolve(_) => "resolve",
            Error::Apply(_) => "apply",
            Error::Status { .. } => "status",
            Error::Finalizer { source, .. } => match &**source {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
        }
    }
}

#[tracing::instrument(name = "reconcile", skip_all, fields(agent = %status::key(&*agent)))]
pub async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = status::key(&*agent);
    let api = Api::<Agent>::namespaced(ctx.client.clone(), &agent.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, agent, |event| async {
        match event {
            Finalizer::Apply(agent) => reconcile_agent(agent, &ctx).await,
            Finalizer::Cleanup(agent) => cleanup(agent, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer {
        agent: key,
        source: Box::new(e),
    })
}

async fn reconcile_agent(agent: Arc<Agent>, ctx: &Context) -> Result<Action, Error> {
    if ctx.stale(&*agent) {
        // The cache still has the copy this operator wrote status from: its write is on its way
        // through the watch (a status-only change, so it reconciles nothing), or the watch is
        // re-listing after a 410 or an outage. Its spec was applied then; look again soon.
        return Ok(Action::requeue(REQUEUE_STALE));
    }
    let missing_roles = apply::missing_cluster_roles(&ctx.client, &agent);
    let resolved = async {
        Ok::<_, Error>(fetch::resolve(&ctx.client, ctx.members.get(), agent.clone()).await?)
    };
    let (resolved, missing_roles) = futures::try_join!(resolved, missing_roles)?;
    let (problems, applied) = match plan::plan(&resolved, RunsIn::Cluster) {
        Err(problems) => (problems, Ok(Vec::new())),
        Ok(plan) => {
            for (cron, why) in &plan.skipped_crons {
                tracing::debug!(cron, why, "cron left out");
            }
            let objects = build::build_all(&plan, &ctx.image);
            let bind_reader = missing_roles.is_empty();
            (
                Vec::new(),
                apply::apply_all(ctx, &resolved, &objects, bind_reader).await,
            )
        }
    };
    // A failed apply is reported in status, then retried through the error policy.
    let (changes, apply_error) = match applied {
        Ok(changes) => (changes, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let mut observed = observe::observe(ctx, &agent).await?;
    observed.missing_cluster_roles = missing_roles;
    if resolved.channels.is_empty() {
        observed.held = Some(format!(
            "no Channel names this Agent in spec.agentRef yet; the gateway {} starts with the first one",
            meta::gateway_name(&agent)
        ));
    }
    let failure = apply_error.as_ref().map(ToString::to_string);
    let backup_problems = plan::validate::backup_problems(&resolved);
    let decision = status::decide(
        &agent,
        &problems,
        &backup_problems,
        failure.as_deref(),
        &observed,
    );
    let status_changed = status::write_status(ctx, &agent, &decision).await?;
    if status_changed {
        ctx.wrote_status(&*agent);
    }
    if let Some(e) = apply_error {
        if status_changed {
            ctx.event(
                &*agent,
                EventType::Warning,
                "ApplyFailed",
                "Apply",
                e.to_string(),
            )
            .await;
        }
        return Err(e);
    }

    if !changes.is_empty() {
        let note = changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(%note, "applied");
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
        tracing::warn!(%note, "refused: {what}");
        ctx.event(&*agent, EventType::Warning, reason, "Validate", note)
            .await;
    }
    // Once when a condition turns to one of these, not at every other status change while it
    // lasts.
    for (type_, reason, action) in [
        (CONDITION_READY, READY_READER_MISSING, "Bind"),
        (CONDITION_BACKED_UP, BACKUP_FAILED, "Backup"),
    ] {
        if let Some(now) = turned_to(&agent, &decision.conditions, type_, reason) {
            tracing::warn!(note = %now.message, "{type_}: {reason}");
            ctx.event(
                &*agent,
                EventType::Warning,
                reason,
                action,
                now.message.clone(),
            )
            .await;
        }
    }
    let ready = decision.conditions.first().is_some_and(|c| c.status);
    let requeue = if !problems.is_empty() {
        REQUEUE_REFUSED
    } else if ready {
        REQUEUE_READY
    } else {
        REQUEUE_PENDING
    };
    Ok(Action::requeue(
        decision.recheck_in.map_or(requeue, |r| requeue.min(r)),
    ))
}

/// The decided condition of `type_`, when its reason is `reason` now and was not before.
fn turned_to<'a>(
    agent: &Agent,
    decided: &'a [conditions::Cond],
    type_: &str,
    reason: &str,
) -> Option<&'a conditions::Cond> {
    let now = decided.iter().find(|c| c.type_ == type_)?;
    let was = agent
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.common.conditions, type_))
        .map(|c| c.reason.as_str());
    (now.reason == reason && was != Some(reason)).then_some(now)
}

/// Deletion: namespaced objects go with their owner reference; the cluster-scoped bindings
/// need deleting here.
async fn cleanup(agent: Arc<Agent>, ctx: &Context) -> Result<Action, Error> {
    let crbs = Api::<ClusterRoleBinding>::all(ctx.client.clone());
    for name in [
        meta::cluster_binding_name(&agent),
        meta::pod_log_binding_name(&agent),
    ] {
        if let Some(change) = super::apply::delete(&crbs, &name).await? {
            tracing::info!(%change, "cleaned up");
        }
    }
    Ok(Action::await_change())
}
