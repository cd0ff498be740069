//! The controllers' wiring: one shared watch per kind (metadata-only for generated objects and
//! labelled Secrets), the Agent controller and the member controllers fed from it, each watch's
//! first list and failures reported to the operator's health.

use std::sync::Arc;
use std::time::Instant;

use std::future::Future;

use futures::future::Shared;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::health::{Health, describe};
use crate::consts::*;
use crate::crd::{Agent, Channel, Cron, NodePairing};
use crate::operator::context::{Context, MemberCache};
use crate::operator::{agent, members};

/// The API of kind `K` in the watched namespace, or in all namespaces.
fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// How many reconciles of each kind run at once when not told otherwise: the work is waiting on
/// the API server, and more in flight mostly adds memory and API load.
pub const DEFAULT_CONCURRENCY: u16 = 4;
/// Events closer together than this cause one Agent reconcile: `kubectl apply` of an Agent with
/// its Channel and Crons arrives as a burst, and should roll the gateway once.
pub const AGENT_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(1);
/// The annotation `kubectl apply` keeps its last applied copy of an object in.
const KUBECTL_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Room for watch events a slow controller has not taken yet, per subscriber.
const SHARED_BUFFER: usize = 1024;
/// How long a failed reconcile waits before it is tried again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(15);

/// One watch per kind, its errors and first list reported to `health`.
fn watch<K>(
    health: &Arc<Health>,
    kind: &'static str,
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    health.expect(kind);
    let health = health.clone();
    watcher(api, config)
        .default_backoff()
        .inspect(move |item| health.observe(kind, item))
        // Nothing reads them, and on a real API server they are often the largest part of an
        // object's metadata: managed fields, and `kubectl apply`'s copy of the whole object.
        .modify(|o| {
            o.managed_fields_mut().clear();
            o.annotations_mut().remove(KUBECTL_LAST_APPLIED);
        })
}

/// Metadata-only watch: owner references and names are all a trigger needs. Its errors end
/// here: [`watch`] has reported them to health and backs off by itself. Passed on, each would
/// pause every trigger of the controller it feeds (kube's `Controller` backs its whole trigger
/// stream off on any error, 0.8 s doubling to 30 s): one 410 on the six metadata watches left
/// the Agent controller deaf, and the last of them unlisted, for some 25 s.
fn watch_metadata<K>(
    health: &Arc<Health>,
    kind: &'static str,
    client: &Client,
    ns: &Option<String>,
    config: watcher::Config,
) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watch(
        health,
        kind,
        api::<PartialObjectMeta<K>>(client, ns),
        config,
    )
    .touched_objects()
    .filter(|item| std::future::ready(item.is_ok()))
}

/// A kind cached once and fed to several controllers.
struct SharedKind<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    subscribers: Vec<ReflectHandle<K>>,
    /// Drives the watch; must be polled for the subscribers to receive anything.
    root: futures::future::BoxFuture<'static, ()>,
}

fn shared_kind<K, F>(
    health: &Arc<Health>,
    kind: &'static str,
    client: &Client,
    ns: &Option<String>,
    subscribers: usize,
    stop: Shared<F>,
) -> SharedKind<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (store, writer) = reflector::store_shared(SHARED_BUFFER);
    let subscribers = (0..subscribers)
        .map(|_| writer.subscribe().expect("a shared store has subscribers"))
        .collect();
    let root = watch(
        health,
        kind,
        api::<K>(client, ns),
        watcher::Config::default(),
    )
    .reflect_shared(writer)
    .take_until(stop)
    .for_each(|_| async {})
    .boxed();
    SharedKind {
        store,
        subscribers,
        root,
    }
}

/// Runs the Agent controller and the three member controllers until `stop` resolves. Each kind
/// is watched once: Agents, Channels and Crons are cached once and shared, generated objects
/// and Secrets are watched by their metadata only.
pub async fn run_controllers<F>(
    client: Client,
    ns: &Option<String>,
    ctx: Arc<Context>,
    health: Arc<Health>,
    concurrency: u16,
    stop: Shared<F>,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let config = controller::Config::default().concurrency(concurrency);
    ctx.metrics
        .declare_errors("Agent", agent::Error::METRIC_LABELS);
    for kind in ["Channel", "Cron", "NodePairing"] {
        ctx.metrics
            .declare_errors(kind, members::MemberError::METRIC_LABELS);
    }
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={FIELD_MANAGER}"));
    let mut agents = shared_kind::<Agent, F>(&health, "Agent", &client, ns, 4, stop.clone());
    let mut channels = shared_kind::<Channel, F>(&health, "Channel", &client, ns, 2, stop.clone());
    let mut crons = shared_kind::<Cron, F>(&health, "Cron", &client, ns, 2, stop.clone());
    let mut pairings =
        shared_kind::<NodePairing, F>(&health, "NodePairing", &client, ns, 1, stop.clone());
    let secrets = watch_metadata::<Secret>(
        &health,
        "Secret",
        &client,
        ns,
        watcher::Config::default().labels(WATCHED_SECRET_SELECTOR),
    );
    let _ = ctx.members.set(MemberCache {
        agents: agents.store.clone(),
        channels: channels.store.clone(),
        crons: crons.store.clone(),
    });
    let secret_targets = {
        let (agents, channels) = (agents.store.clone(), channels.store.clone());
        move |s: PartialObjectMeta<Secret>| agents_using_secret(&s, &agents, &channels)
    };
    let members_ready = {
        let (channels, crons) = (channels.store.clone(), crons.store.clone());
        move || {
            let (channels, crons) = (channels.clone(), crons.clone());
            async move {
                // Reconciling an Agent before its members are known would roll its gateway
                // once without them and again with them.
                let _ = channels.wait_until_ready().await;
                let _ = crons.wait_until_ready().await;
            }
        }
    };
    let agent_controller = Controller::for_shared_stream(
        agents
            .subscribers
            .pop()
            .expect("subscriber")
            .filter(changed_beyond_status(agents.store.clone())),
        agents.store.clone(),
    )
    .with_config(config.clone().debounce(AGENT_DEBOUNCE))
    .owns_stream(watch_metadata::<Deployment>(&health, "Deployment", &client, ns, owned.clone()))
    .owns_stream(watch_metadata::<ConfigMap>(&health, "ConfigMap", &client, ns, owned.clone()))
    .owns_stream(watch_metadata::<Service>(&health, "Service", &client, ns, owned.clone()))
    .owns_stream(watch_metadata::<Ingress>(&health, "Ingress", &client, ns, owned.clone()))
    .owns_stream(watch_metadata::<CronJob>(&health, "CronJob", &client, ns, owned))
    .watches_shared_stream(
        channels
            .subscribers
            .pop()
            .expect("subscriber")
            .filter(changed_beyond_status(channels.store.clone())),
        |c: Arc<Channel>| agent_of(&*c, &c.spec.agent_ref),
    )
    .watches_shared_stream(
        crons
            .subscribers
            .pop()
            .expect("subscriber")
            .filter(changed_beyond_status(crons.store.clone())),
        |c: Arc<Cron>| agent_of(&*c, &c.spec.agent_ref),
    )
    .watches_stream(secrets, secret_targets)
    .graceful_shutdown_on(stop.clone())
    .run(
        move |obj, ctx: Arc<Context>| {
            let members_ready = members_ready();
            async move {
                members_ready.await;
                let start = Instant::now();
                let r = agent::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe("Agent", start, r.as_ref().err().map(agent::Error::metric_label));
                r
            }
        },
        {
            let health = health.clone();
            move |agent: Arc<Agent>, err: &agent::Error, _| {
                let agent = agent::status::key(&*agent);
                tracing::warn!(%agent, error = %err, cause = %describe(err), api = %health.api_url(), "reconcile failed");
                Action::requeue(RETRY)
            }
        },
        ctx.clone(),
    )
    .for_each(|_| async {});
    futures::join!(
        agents.root,
        channels.root,
        crons.root,
        pairings.root,
        agent_controller,
        member_controller(
            channels.store.clone(),
            channels.subscribers.pop().expect("subscriber"),
            agents.subscribers.pop().expect("subscriber"),
            config.clone(),
            &health,
            ctx.clone(),
            stop.clone()
        ),
        member_controller(
            crons.store.clone(),
            crons.subscribers.pop().expect("subscriber"),
            agents.subscribers.pop().expect("subscriber"),
            config.clone(),
            &health,
            ctx.clone(),
            stop.clone()
        ),
        member_controller(
            pairings.store.clone(),
            pairings.subscribers.pop().expect("subscriber"),
            agents.subscribers.pop().expect("subscriber"),
            config,
            &health,
            ctx.clone(),
            stop.clone()
        ),
    );
}

/// Lets an object through when more than its status changed, or when it is gone from `store`
/// (deleted): the operator's own status writes would otherwise reconcile every Agent a second
/// time for nothing. The Agent controller reads no status of Channels or Crons, and an Agent's
/// own status is written by it. Keeps one hash per object.
fn changed_beyond_status<K>(
    store: Store<K>,
) -> impl FnMut(&Arc<K>) -> std::future::Ready<bool> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    use std::hash::{Hash, Hasher};
    let mut seen = std::collections::HashMap::new();
    move |o| {
        let key = ObjectRef::from_obj(&**o);
        if store.get(&key).is_none() {
            seen.remove(&key);
            return std::future::ready(true);
        }
        let m = o.meta();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            m.generation,
            m.deletion_timestamp.is_some(),
            &m.finalizers,
            &m.labels,
            &m.annotations,
        )
            .hash(&mut h);
        std::future::ready(seen.insert(key, h.finish()) != Some(h.finish()))
    }
}

fn agent_of<K: Resource>(member: &K, agent_ref: &str) -> Option<ObjectRef<Agent>> {
    Some(ObjectRef::new(agent_ref).within(&member.namespace().unwrap_or_default()))
}

/// The Agents whose gateway reads this Secret, directly or through one of their Channels.
fn agents_using_secret(
    secret: &PartialObjectMeta<Secret>,
    agents: &Store<Agent>,
    channels: &Store<Channel>,
) -> Vec<ObjectRef<Agent>> {
    let (ns, name) = (secret.namespace(), secret.name_any());
    let direct = agents
        .state()
        .into_iter()
        .filter(|a| a.namespace() == ns)
        .filter(|a| {
            crate::plan::resolve::secret_uses(a, &[])
                .iter()
                .any(|u| u.reference.name == name)
        })
        .map(|a| ObjectRef::from_obj(&*a));
    let via_channel = channels
        .state()
        .into_iter()
        .filter(|c| c.namespace() == ns && c.spec.telegram.bot_token_secret_ref.name == name)
        .filter_map(|c| agent_of(&*c, &c.spec.agent_ref));
    direct.chain(via_channel).collect()
}

async fn member_controller<M: members::Member, F>(
    store: Store<M>,
    members: ReflectHandle<M>,
    agents: ReflectHandle<Agent>,
    config: controller::Config,
    health: &Arc<Health>,
    ctx: Arc<Context>,
    stop: Shared<F>,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let api_url = health.api_url().to_string();
    Controller::for_shared_stream(members, store.clone())
        .with_config(config)
        .watches_shared_stream(agents, move |a: Arc<Agent>| {
            store
                .state()
                .into_iter()
                .filter(|m| m.namespace() == a.namespace() && m.agent_ref() == a.name_any())
                .map(|m| ObjectRef::from_obj(&*m))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(stop)
        .run(
            |obj, ctx: Arc<Context>| async move {
                let start = Instant::now();
                let r = members::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe(M::KIND, start, r.as_ref().err().map(members::MemberError::metric_label));
                r
            },
            move |obj: Arc<M>, err: &members::MemberError, _| {
                let name = agent::status::key(&*obj);
                tracing::warn!(kind = M::KIND, %name, error = %err, cause = %describe(err), api = %api_url, "reconcile failed");
                Action::requeue(RETRY)
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;

    fn channel(generation: i64, status: &str) -> Arc<Channel> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "clawops.dev/v1alpha1", "kind": "Channel",
                "metadata": {"name": "telegram", "namespace": "default", "generation": generation},
                "spec": {"agentRef": "shrimp", "telegram": {"botTokenSecretRef": {"name": "s", "key": "k"}}},
                "status": {"conditions": [{"type": "Ready", "status": status, "reason": "R",
                    "message": "", "lastTransitionTime": "2026-11-21T00:00:00Z"}]}
            }))
            .expect("a Channel"),
        )
    }

    fn passes(
        filter: &mut impl FnMut(&Arc<Channel>) -> std::future::Ready<bool>,
        c: &Arc<Channel>,
    ) -> bool {
        futures::executor::block_on(filter(c))
    }

    #[test]
    fn status_only_changes_are_ignored_but_spec_changes_and_deletions_pass() {
        let (store, mut writer) = reflector::store::<Channel>();
        let mut filter = changed_beyond_status(store);
        let first = channel(1, "False");
        writer.apply_watcher_event(&Event::Apply((*first).clone()));
        assert!(passes(&mut filter, &first), "first sight passes");
        let status_only = channel(1, "True");
        writer.apply_watcher_event(&Event::Apply((*status_only).clone()));
        assert!(
            !passes(&mut filter, &status_only),
            "a status write is ignored"
        );
        let spec = channel(2, "True");
        writer.apply_watcher_event(&Event::Apply((*spec).clone()));
        assert!(passes(&mut filter, &spec), "a spec change passes");
        writer.apply_watcher_event(&Event::Delete((*spec).clone()));
        assert!(passes(&mut filter, &spec), "a deletion passes");
    }
}
