//! Status of the resources that belong to an Agent — Channel, Cron, NodePairing: one generic
//! reconcile that checks the Agent exists and the member is usable, and writes `Ready`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::apply::Object;
use super::context::Context;
use crate::conditions::{self, Cond};
use crate::consts::CONDITION_READY;
use crate::crd::node_pairing::NodePhase;
use crate::crd::{Agent, Channel, CommonStatus, Cron, NodePairing};
use crate::plan::build::meta;
use crate::plan::{resolve, validate};
use crate::util::hex;

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
    if stale(&ctx, &*obj) {
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
    if let (Some(uid), Some(version)) = (obj.uid(), obj.resource_version()) {
        ctx.stale_members
            .lock()
            .expect("stale members lock")
            .insert(uid, version);
    }
    Ok(requeue(&ready))
}

/// How soon a member seen stale is looked at again, should its watch event be lost.
const STALE_RECHECK: Duration = Duration::from_secs(2);

/// Whether `obj` is the copy from before this operator's last status write to it; forgets
/// the write once a newer copy is seen.
fn stale<M: Member>(ctx: &Context, obj: &M) -> bool {
    let (Some(uid), Some(version)) = (obj.uid(), obj.resource_version()) else {
        return false;
    };
    let mut written = ctx.stale_members.lock().expect("stale members lock");
    match written.get(&uid) {
        Some(before) if *before == version => true,
        Some(_) => {
            written.remove(&uid);
            false
        }
        None => false,
    }
}

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

impl Member for Channel {
    const KIND: &'static str = "Channel";
    fn agent_ref(&self) -> &str {
        &self.spec.agent_ref
    }
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    async fn check(&self, agent: &Agent, ctx: &Context) -> Result<(Cond, Value), MemberError> {
        let r = &self.spec.telegram.bot_token_secret_ref;
        let ns = self.namespace().unwrap_or_default();
        let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&r.name)
            .await
            .map_err(|source| MemberError::Read {
                what: format!("Secret {}", r.name),
                kind: Self::KIND,
                name: self.name_any(),
                source,
            })?;
        Ok((
            channel_ready(self, agent, resolve::lookup(secret.as_ref(), &r.key).err()),
            json!({}),
        ))
    }
}

/// Ready of a Channel given what is wrong with its bot token, if anything.
pub fn channel_ready(
    channel: &Channel,
    agent: &Agent,
    token: Option<crate::secrets::SecretProblem>,
) -> Cond {
    match token {
        Some(p) => Cond::is_false(
            CONDITION_READY,
            "SecretInvalid",
            format!(
                "{} (spec.telegram.botTokenSecretRef): {}; put the bot token from @BotFather there",
                channel.spec.telegram.bot_token_secret_ref,
                p.describe()
            ),
        ),
        None => match agent_not_ready(agent) {
            Some(why) => Cond::is_false(CONDITION_READY, "AgentNotReady", why),
            None => Cond::is_true(
                CONDITION_READY,
                "Serving",
                format!("Agent {} answers on this channel", agent.name_any()),
            ),
        },
    }
}

/// Why the Agent does not serve its members yet, from its own Ready condition.
fn agent_not_ready(agent: &Agent) -> Option<String> {
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

impl Member for Cron {
    const KIND: &'static str = "Cron";
    fn agent_ref(&self) -> &str {
        &self.spec.agent_ref
    }
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    async fn check(&self, agent: &Agent, ctx: &Context) -> Result<(Cond, Value), MemberError> {
        let ns = self.namespace().unwrap_or_default();
        let channels = match ctx.members.get() {
            Some(cache) => cache.channels(&ns, &agent.name_any()),
            None => {
                Api::<Channel>::namespaced(ctx.client.clone(), &ns)
                    .list(&ListParams::default())
                    .await
                    .map_err(|source| MemberError::Read {
                        what: "Channels".into(),
                        kind: Self::KIND,
                        name: self.name_any(),
                        source,
                    })?
                    .items
            }
        };
        let channels = resolve::members_of(agent, channels, |c| &c.spec.agent_ref);
        let job_name = meta::cron_job_name(agent, &self.name_any());
        // Whether it exists is all that is asked.
        let exists = Api::<CronJob>::namespaced(ctx.client.clone(), &ns)
            .get_metadata_opt(&job_name)
            .await
            .map_err(|source| MemberError::Read {
                what: format!("CronJob {job_name}"),
                kind: Self::KIND,
                name: self.name_any(),
                source,
            })?
            .is_some();
        let (ready, job) = cron_ready(self, agent, &channels, exists);
        let current = self.status.as_ref().and_then(|s| s.cron_job.clone());
        Ok((
            ready,
            if current == job {
                json!({})
            } else {
                json!({ "cronJob": job })
            },
        ))
    }
}

/// Ready of a Cron, and the CronJob it runs as once that exists.
pub fn cron_ready(
    cron: &Cron,
    agent: &Agent,
    channels: &[Channel],
    job_exists: bool,
) -> (Cond, Option<String>) {
    match validate::validate_cron(cron, agent, channels) {
        Ok(()) if !job_exists => {
            let job = meta::cron_job_name(agent, &cron.name_any());
            let why = agent_not_ready(agent)
                .unwrap_or_else(|| format!("Agent {} is rolling it out", agent.name_any()));
            (
                Cond::is_false(
                    CONDITION_READY,
                    "WaitingForAgent",
                    format!("CronJob {job} does not exist yet: {why}"),
                ),
                None,
            )
        }
        Ok(()) => {
            let job = meta::cron_job_name(agent, &cron.name_any());
            let state = if cron.spec.suspend {
                "suspended"
            } else {
                "scheduled"
            };
            (
                Cond::is_true(
                    CONDITION_READY,
                    "Scheduled",
                    format!("{state} as CronJob {job}"),
                ),
                Some(job),
            )
        }
        Err(why) => (Cond::is_false(CONDITION_READY, "InvalidCron", why), None),
    }
}

impl Member for NodePairing {
    const KIND: &'static str = "NodePairing";
    const FOLLOWS_AGENT: bool = false;
    fn agent_ref(&self) -> &str {
        &self.spec.agent_ref
    }
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    async fn check(&self, _agent: &Agent, _ctx: &Context) -> Result<(Cond, Value), MemberError> {
        let (ready, phase) = node_pairing_ready(self);
        let current = self.status.as_ref().and_then(|s| s.phase);
        // Connected/Disconnected belong to the gateway; only move between Pending and Approved.
        let keep = matches!(
            current,
            Some(NodePhase::Connected | NodePhase::Disconnected)
        ) && self.spec.approved;
        let extra = if keep || current == phase {
            json!({})
        } else {
            json!({ "phase": phase })
        };
        Ok((ready, extra))
    }
}

/// Ready and phase of a NodePairing: the node id must be the SHA-256 of the public key, and the
/// owner must have approved it.
pub fn node_pairing_ready(np: &NodePairing) -> (Cond, Option<NodePhase>) {
    let derived = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(np.spec.public_key.trim_end_matches('='))
        .ok()
        .filter(|k| k.len() == 32)
        .map(|k| hex(&Sha256::digest(&k)));
    match derived {
        None => (
            Cond::is_false(
                CONDITION_READY,
                "InvalidPublicKey",
                "spec.publicKey is not a raw 32-byte Ed25519 key in unpadded base64url",
            ),
            None,
        ),
        Some(id) if id != np.spec.node_id => (
            Cond::is_false(
                CONDITION_READY,
                "NodeIdMismatch",
                format!("spec.nodeId must be the SHA-256 of spec.publicKey, which is {id}"),
            ),
            None,
        ),
        Some(_) if !np.spec.approved => (
            Cond::is_false(
                CONDITION_READY,
                "PendingApproval",
                format!(
                    "approve the node with: kubectl patch nodepairing {} --type merge -p '{{\"spec\":{{\"approved\":true}}}}'",
                    np.name_any()
                ),
            ),
            Some(NodePhase::Pending),
        ),
        Some(_) => (
            Cond::is_true(CONDITION_READY, "Approved", "the node may connect"),
            Some(NodePhase::Approved),
        ),
    }
}
