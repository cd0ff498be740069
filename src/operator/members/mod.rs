//! Status of the resources that belong to an Agent — Channel, Cron, NodePairing: one generic
//! reconcile that checks the Agent exists and the member is usable, and writes `Ready`; each
//! kind's check in its own file.

mod channel;
mod cron;
mod node_pairing;

pub use channel::channel_ready;
pub use cron::cron_ready;
pub use node_pairing::node_pairing_ready;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::apply::Object;
use super::context::Context;
use crate::conditions::{self, Cond};
use crate::consts::CONDITION_READY;
use crate::crd::{Agent, CommonStatus};

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("reading {what} for {kind} {name}: {source}")]
    Read {
        what: String,
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("writing status of {kind} {name}: {source}")]
    Status {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
}

impl MemberError {
    /// Every value of [`MemberError::metric_label`].
    pub const METRIC_LABELS: &[&str] = &["read", "status"];

    /// The kind of failure, as the `error` label of the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            MemberError::Read { .. } => "read",
            MemberError::Status { .. } => "status",
        }
    }
}

/// A resource that names its Agent in `spec.agentRef`.
pub trait Member: Object + kube::Resource<Scope = NamespaceResourceScope> {
    const KIND: &'static str;
    /// Whether the status follows the Agent's own, so is not worth writing before it exists.
    const FOLLOWS_AGENT: bool = true;
    fn agent_ref(&self) -> &str;
    /// The conditions and generation the last status recorded.
    fn common_status(&self) -> Option<&CommonStatus>;
    fn previous(&self) -> (Option<i64>, Vec<Condition>) {
        self.common_status()
            .map(|s| (s.observed_generation, s.conditions.clone()))
            .unwrap_or_default()
    }
    /// Decides the Ready condition (and other status fields) given the Agent exists.
    fn check(
        &self,
        agent: &Agent,
        ctx: &Context,
    ) -> impl Future<Output = Result<(Cond, Value), MemberError>> + Send;
}

#[tracing::instrument(name = "reconcile", skip_all, fields(kind = M::KIND, name = %super::agent::status::key(&*obj)))]
pub async fn reconcile<M: Member>(obj: Arc<M>, ctx: Arc<Context>) -> Result<Action, MemberError> {
    let ns = obj.namespace().unwrap_or_default();
    if ctx.stale(&*obj) {
        // Its own status write is on its way through the watch, which reconciles it again;
        // deciding from the older copy would write the same status twice.
        return Ok(Action::requeue(STALE_RECHECK));
    }
    // From the operator's cache when it has it (the Agent event that brought us here was
    // stored there before it was passed on); otherwise from the API server, since before the
    // first list of Agents is in, a cache miss would report a present Agent as missing.
    let cached = ctx
        .members
        .get()
        .and_then(|c| c.agent(&ns, obj.agent_ref()));
    let agent = match cached {
        Some(agent) => Some(agent),
        None => Api::<Agent>::namespaced(ctx.client.clone(), &ns)
            .get_opt(obj.agent_ref())
            .await
            .map_err(|source| MemberError::Read {
                what: format!("Agent {}", obj.agent_ref()),
                kind: M::KIND,
                name: obj.name_any(),
                source,
            })?
            .map(Arc::new),
    };
    // Until the Agent has been reconciled at its generation its members' status would only
    // say so, to be rewritten moments later; its status change brings them back here.
    if M::FOLLOWS_AGENT && agent.as_ref().is_some_and(|a| !observed(a)) {
        return Ok(Action::await_change());
    }
    let (ready, extra) = match &agent {
        None => (
            Cond::is_false(
                CONDITION_READY,
                "AgentNotFound",
                format!(
                    "Agent {} does not exist in namespace {ns}; create it or fix spec.agentRef",
                    obj.agent_ref()
                ),
            ),
            json!({}),
        ),
        Some(agent) => obj.check(agent, &ctx).await?,
    };
    let (prev_gen, prev_conditions) = obj.previous();
    let generation = obj.meta().generation;
    let conditions = conditions::merge(
        &prev_conditions,
        std::slice::from_ref(&ready),
        generation,
        Timestamp::now(),
    );
    let mut status = extra;
    let unchanged_extra = status.as_object().is_none_or(|m| m.is_empty());
    if prev_gen == generation && prev_conditions == conditions && unchanged_extra {
        return Ok(requeue(&ready));
    }
    status["observedGeneration"] = json!(generation);
    status["conditions"] = json!(conditions);
    Api::<M>::namespaced(ctx.client.clone(), &ns)
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(|source| MemberError::Status {
            kind: M::KIND,
            name: obj.name_any(),
            source,
        })?;
    ctx.wrote_status(&*obj);
    Ok(requeue(&ready))
}

/// How soon a member seen stale is looked at again, should its watch event be lost.
const STALE_RECHECK: Duration = Duration::from_secs(2);

/// Whether the Agent's status reflects its current spec.
fn observed(agent: &Agent) -> bool {
    agent.status.as_ref().is_some_and(|s| {
        s.common.observed_generation == agent.metadata.generation && !s.common.conditions.is_empty()
    })
}

fn requeue(ready: &Cond) -> Action {
    // A ready member is re-checked when its Agent, itself or (for Channels) its labelled
    // Secret changes; the periodic pass only catches what no watch sees.
    Action::requeue(if ready.status {
        Duration::from_secs(3600)
    } else {
        Duration::from_secs(30)
    })
}

/// Why the Agent does not serve its members yet, from its own Ready condition.
pub(super) fn agent_not_ready(agent: &Agent) -> Option<String> {
    let ready = agent
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.common.conditions, CONDITION_READY));
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!(
            "Agent {} is not ready ({}): {}",
            agent.name_any(),
            c.reason,
            c.message
        )),
        None => Some(format!(
            "Agent {} has not been reconciled yet",
            agent.name_any()
        )),
    }
}
