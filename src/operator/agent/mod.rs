//! The Agent controller: resolve → validate → build → apply → status, for one Agent.

pub mod fetch;
pub mod pods;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::apply::{self, ApplyError, Change, Object, Plan};
use super::context::Context;
use crate::conditions;
use crate::consts::*;
use crate::crd::agent::ClusterAccess;
use crate::crd::{Agent, AgentStatus, CommonStatus};
use crate::plan::build::{self, GatewayObjects, meta};
use crate::plan::resolve::Resolved;
use crate::plan::validate::Problem;
use crate::plan::{self, Target};
use fetch::ResolveError;
use pods::PodFacts;
use status::{Observed, READY_READER_MISSING};

/// Requeue while secrets or spec are refused: unlabeled Secrets are not watched.
pub const REQUEUE_REFUSED: Duration = Duration::from_secs(10);
/// Requeue while the gateway is not ready yet.
pub const REQUEUE_PENDING: Duration = Duration::from_secs(30);
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
    let reader_missing = async {
        Ok(agent.spec.cluster_access == ClusterAccess::Read
            && !cluster_reader_exists(&ctx.client).await?)
    };
    let resolved = async {
        Ok::<_, Error>(fetch::resolve(&ctx.client, ctx.members.get(), agent.clone()).await?)
    };
    let (resolved, reader_missing) = futures::try_join!(resolved, reader_missing)?;
    let (problems, applied) = match plan::plan(&resolved, Target::Cluster) {
        Err(problems) => (problems, Ok(Vec::new())),
        Ok(plan) => {
            for (cron, why) in &plan.skipped_crons {
                tracing::debug!(cron, why, "cron left out");
            }
            let objects = build::build_all(&plan, &ctx.image);
            let bind_reader = !reader_missing;
            (
                Vec::new(),
                apply_all(ctx, &resolved, &objects, bind_reader).await,
            )
        }
    };
    // A failed apply is reported in status, then retried through the error policy.
    let (changes, apply_error) = match applied {
        Ok(changes) => (changes, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let mut observed = observe(ctx, &agent).await?;
    observed.cluster_reader_missing = reader_missing;
    if resolved.channels.is_empty() {
        observed.held = Some(format!(
            "no Channel names this Agent in spec.agentRef yet; the gateway {} starts with the first one",
            meta::gateway_name(&agent)
        ));
    }
    let failure = apply_error.as_ref().map(ToString::to_string);
    let decision = status::decide(&agent, &problems, failure.as_deref(), &observed);
    let status_changed = write_status(ctx, &agent, &decision).await?;
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
    // Once when Ready turns to it, not at every other status change while it lasts.
    let now = &decision.conditions[0];
    let was = agent
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.common.conditions, CONDITION_READY))
        .map(|c| c.reason.as_str());
    if now.reason == READY_READER_MISSING && was != Some(READY_READER_MISSING) {
        tracing::warn!(note = %now.message, "cluster reader missing");
        ctx.event(
            &*agent,
            EventType::Warning,
            READY_READER_MISSING,
            "Bind",
            now.message.clone(),
        )
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

/// Plans the writes into one namespace, choosing the API by the object's type.
struct Writer<'a> {
    client: &'a Client,
    ns: &'a str,
    plans: Vec<Plan>,
}

impl Writer<'_> {
    fn api<K: Object + Resource<Scope = NamespaceResourceScope>>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), self.ns)
    }
    fn apply<K: Object + Resource<Scope = NamespaceResourceScope>>(&mut self, obj: &K) {
        self.plans
            .push(apply::plan_apply(self.api(), obj.clone(), true));
    }
    fn create_once<K: Object + Resource<Scope = NamespaceResourceScope>>(&mut self, obj: &K) {
        self.plans
            .push(apply::plan_create_once(self.api(), obj.clone()));
    }
    /// Deletes this Agent's objects of kind `K` that are not in `keep`.
    fn prune<K: Object + Resource<Scope = NamespaceResourceScope>>(
        &mut self,
        selector: &str,
        keep: impl IntoIterator<Item = String>,
    ) {
        self.plans.push(apply::plan_prune(
            self.api::<K>(),
            selector.to_string(),
            keep.into_iter().collect(),
        ));
    }
}

/// Whether the ClusterRole that `clusterAccess: read` binds to exists. The chart owns it (so
/// uninstalling removes it); binding to a missing role would be refused by the API server.
async fn cluster_reader_exists(client: &Client) -> Result<bool, Error> {
    let found = Api::<ClusterRole>::all(client.clone())
        .get_metadata_opt(CLUSTER_READER_ROLE)
        .await
        .map_err(|source| ApplyError {
            action: "reading",
            kind: "ClusterRole".into(),
            name: CLUSTER_READER_ROLE.into(),
            source,
        })?;
    Ok(found.is_some())
}

/// Applies every object, creates the once-only ones, and prunes what the spec dropped. Without
/// `bind_reader` a wanted ClusterRoleBinding is left as it is (its role is missing).
async fn apply_all(
    ctx: &Context,
    resolved: &Resolved,
    o: &GatewayObjects,
    bind_reader: bool,
) -> Result<Vec<Change>, Error> {
    let agent = &*resolved.agent;
    let ns = agent.namespace().unwrap_or_default();
    let mut w = Writer {
        client: &ctx.client,
        ns: &ns,
        plans: Vec::new(),
    };

    if let Some(token) = &resolved.new_token {
        let secret = build::secrets::token_secret(agent, token);
        let create = apply::plan_create(w.api(), secret);
        w.plans.push(Box::pin(async move { Ok(vec![create]) }));
    }
    w.apply(&o.service_account);
    w.apply(&o.role);
    w.apply(&o.role_binding);
    let crbs = Api::<ClusterRoleBinding>::all(ctx.client.clone());
    match &o.cluster_role_binding {
        Some(crb) if bind_reader => w.plans.push(apply::plan_apply(crbs, crb.clone(), true)),
        Some(_) => {}
        None => w.plans.push(apply::plan_delete_if_present(
            crbs,
            meta::cluster_binding_name(agent),
        )),
    }
    w.apply(&o.cron_service_account);
    w.apply(&o.cron_role);
    w.apply(&o.cron_role_binding);
    w.apply(&o.config_map);
    if let Some(cm) = &o.tailscale_serve {
        w.apply(cm);
    }
    if let Some(s) = &o.tailscale_state {
        w.create_once(s);
    }
    // A claim's class and size cannot be changed in place (local-path cannot even grow one),
    // so it is created once; resize or replace it by hand.
    w.create_once(&o.pvc);
    // A Channel created just after its Agent would roll a new gateway a second time, so
    // without one only an existing gateway is changed.
    let create_gateway = !resolved.channels.is_empty();
    w.plans.push(apply::plan_apply(
        w.api(),
        o.deployment.clone(),
        create_gateway,
    ));
    w.apply(&o.service);
    if let Some(i) = &o.ingress {
        w.apply(i);
    }
    if let Some(np) = &o.network_policy {
        w.apply(np);
    }
    for cj in &o.cron_jobs {
        w.apply(cj);
    }

    // Prune the kinds whose objects come and go with the spec: only when what is kept differs
    // from the last successful prune (or the operator has not pruned this Agent yet), since a
    // prune lists five kinds and only the spec makes objects of ours go.
    // The generated token survives every spec change; the Tailscale state goes with the sidecar.
    let mut secrets = names(&o.tailscale_state);
    secrets.push(meta::token_secret_name(agent));
    let keep = [
        names(&o.cron_jobs),
        names(&o.ingress),
        names(&o.network_policy),
        names(std::iter::once(&o.config_map).chain(&o.tailscale_serve)),
        secrets,
    ];
    let key = agent.uid().unwrap_or_else(|| status::key(agent));
    let prune = ctx.pruned.lock().expect("prune lock").get(&key) != Some(&keep);
    if prune {
        let sel = meta::instance_selector(&agent.name_any());
        let [cron_jobs, ingresses, policies, config_maps, secrets] = keep.clone();
        w.prune::<CronJob>(&sel, cron_jobs);
        w.prune::<Ingress>(&sel, ingresses);
        w.prune::<NetworkPolicy>(&sel, policies);
        w.prune::<ConfigMap>(&sel, config_maps);
        w.prune::<Secret>(&sel, secrets);
    }
    let changes = apply::run(w.plans).await?;
    if prune {
        ctx.pruned.lock().expect("prune lock").insert(key, keep);
    }
    Ok(changes)
}

fn names<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> Vec<String> {
    objects.into_iter().map(ResourceExt::name_any).collect()
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
    let (deployment, ingress, tailscale_state) =
        futures::try_join!(deployment, ingress, tailscale_state)?;
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
        cluster_reader_missing: false,
        held: None,
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
        // Named once it exists; a refused Agent may never have had its token generated.
        token_secret: previous.token_secret.clone().or_else(|| {
            decision
                .applied
                .then(|| build::secrets::token_ref(agent).name)
        }),
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
    .map_err(|source| Error::Status {
        agent: status::key(agent),
        source,
    })?;
    Ok(true)
}

/// The status as a merge patch: fields that became empty are sent as `null`, which removes
/// them; omitting them would leave the old value and make every later reconcile write again.
fn status_patch(status: &AgentStatus) -> serde_json::Value {
    let mut body = serde_json::to_value(status).expect("status serializes");
    for field in ["url", "tokenSecret", "observedGeneration"] {
        body.as_object_mut()
            .expect("status is an object")
            .entry(field)
            .or_insert(serde_json::Value::Null);
    }
    body
}

/// Deletion: namespaced objects go with their owner reference; the cluster-scoped binding
/// needs deleting here.
async fn cleanup(agent: Arc<Agent>, ctx: &Context) -> Result<Action, Error> {
    let crbs = Api::<ClusterRoleBinding>::all(ctx.client.clone());
    if let Some(change) = apply::delete(&crbs, &meta::cluster_binding_name(&agent)).await? {
        tracing::info!(%change, "cleaned up");
    }
    Ok(Action::await_change())
}
