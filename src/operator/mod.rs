//! `clawops operator`: runs the controllers (after winning leader election), serves health and
//! metrics, and shuts down cleanly on SIGTERM.

pub mod http;
pub mod metrics;
pub mod rbac;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use std::future::Future;

use futures::future::Shared;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::consts::*;
use crate::controller::context::Context;
use crate::controller::{agent, members};
use crate::crd::{Agent, Channel, Cron, NodePairing};
use http::HttpState;
use metrics::Metrics;

/// How long running reconciles may take to finish after SIGTERM; well inside the default
/// 30 s termination grace period of a pod.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub struct OperatorOptions {
    /// Watch one namespace only; all namespaces when `None`.
    pub namespace: Option<String>,
    pub listen: SocketAddr,
    pub leader_election: bool,
    /// Namespace of the Lease used for leader election.
    pub lease_namespace: String,
    pub image: String,
}

fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

pub async fn run(opts: OperatorOptions) -> anyhow::Result<()> {
    let client = Client::try_default().await.map_err(|e| {
        anyhow::anyhow!("no Kubernetes client config (in-cluster or KUBECONFIG): {e}")
    })?;
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(HttpState {
        metrics: metrics.clone(),
        ready: false.into(),
        standby: false.into(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
        .shared()
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (--listen): {e}", opts.listen))?;
    tracing::info!(addr = %opts.listen, "serving /metrics, /healthz, /readyz");
    let server =
        axum::serve(listener, http::router(state.clone())).with_graceful_shutdown(stopped.clone());
    let server = tokio::spawn(async move { server.await });

    let mut lease_lost = None;
    if opts.leader_election {
        let manager =
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "clawops-operator")
                .with_namespace(&opts.lease_namespace)
                .with_identity(
                    std::env::var("POD_NAME")
                        .unwrap_or_else(|_| format!("clawops-{}", std::process::id())),
                )
                .build()
                .await?;
        let (mut leader, _task) = manager.watch().await;
        state.standby.store(true, Ordering::Relaxed);
        tracing::info!(lease = "clawops-operator", namespace = %opts.lease_namespace, "waiting for leadership");
        tokio::select! {
            r = leader.wait_for(|l| *l) => { r?; }
            _ = stopped.clone() => { let _ = server.await; return Ok(()); }
        }
        tracing::info!("became leader");
        lease_lost = Some(async move {
            let _ = leader.wait_for(|l| !*l).await;
        });
    }

    let ctx = Arc::new(Context::new(
        client.clone(),
        opts.image.clone(),
        metrics.clone(),
    ));
    state.ready.store(true, Ordering::Relaxed);
    let controllers = run_controllers(client, &opts.namespace, ctx, stopped.clone());
    // Controllers finish their running reconciles on shutdown, but one that never reached the
    // API server waits forever for its first list; give them a bounded grace period.
    let grace = {
        let stopped = stopped.clone();
        async move {
            stopped.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    let lost = async move {
        match lease_lost {
            Some(lost) => lost.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = controllers => {},
        _ = grace => tracing::warn!(grace = ?SHUTDOWN_GRACE, "controllers did not stop in time; exiting anyway"),
        _ = lost => anyhow::bail!("lost leadership of Lease clawops-operator; exiting so another replica takes over"),
    }
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// Runs the Agent controller and the three member controllers until `stop` resolves.
pub async fn run_controllers<F>(
    client: Client,
    ns: &Option<String>,
    ctx: Arc<Context>,
    stop: Shared<F>,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={FIELD_MANAGER}"));
    let agents = Controller::new(api::<Agent>(&client, ns), watcher::Config::default());
    let store = agents.store();
    let secret_store = store.clone();
    let agents = agents
        .owns(api::<Deployment>(&client, ns), owned.clone())
        .owns(api::<ConfigMap>(&client, ns), owned.clone())
        .owns(api::<Service>(&client, ns), owned.clone())
        .owns(api::<Ingress>(&client, ns), owned.clone())
        .owns(api::<CronJob>(&client, ns), owned.clone())
        .watches(
            api::<Channel>(&client, ns),
            watcher::Config::default(),
            |c: Channel| agent_of(&c, &c.spec.agent_ref),
        )
        .watches(
            api::<Cron>(&client, ns),
            watcher::Config::default(),
            |c: Cron| agent_of(&c, &c.spec.agent_ref),
        )
        // Only labelled Secrets are watched; others are re-read on every requeue.
        .watches(
            api::<Secret>(&client, ns),
            watcher::Config::default().labels(WATCHED_SECRET_SELECTOR),
            move |s: Secret| {
                let ns = s.namespace();
                secret_store
                    .state()
                    .into_iter()
                    .filter(|a| a.namespace() == ns)
                    .map(|a| ObjectRef::from_obj(&*a))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stop.clone())
        .run(
            |obj, ctx: Arc<Context>| async move {
                let start = Instant::now();
                let r = agent::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe("Agent", start, r.is_err());
                r
            },
            |agent: Arc<Agent>, err: &agent::Error, _| {
                let agent = agent::status::key(&*agent);
                tracing::warn!(%agent, error = %err, "reconcile failed");
                Action::requeue(std::time::Duration::from_secs(15))
            },
            ctx.clone(),
        )
        .for_each(|_| async {});
    futures::join!(
        agents,
        member_controller::<Channel, F>(&client, ns, ctx.clone(), stop.clone()),
        member_controller::<Cron, F>(&client, ns, ctx.clone(), stop.clone()),
        member_controller::<NodePairing, F>(&client, ns, ctx.clone(), stop.clone()),
    );
}

fn agent_of<K: Resource>(member: &K, agent_ref: &str) -> Option<ObjectRef<Agent>> {
    Some(ObjectRef::new(agent_ref).within(&member.namespace().unwrap_or_default()))
}

async fn member_controller<M: members::Member, F>(
    client: &Client,
    ns: &Option<String>,
    ctx: Arc<Context>,
    stop: Shared<F>,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let controller = Controller::new(api::<M>(client, ns), watcher::Config::default());
    let store = controller.store();
    controller
        .watches(
            api::<Agent>(client, ns),
            watcher::Config::default(),
            move |a: Agent| {
                store
                    .state()
                    .into_iter()
                    .filter(|m| m.namespace() == a.namespace() && m.agent_ref() == a.name_any())
                    .map(|m| ObjectRef::from_obj(&*m))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stop)
        .run(
            |obj, ctx: Arc<Context>| async move {
                let start = Instant::now();
                let r = members::reconcile(obj, ctx.clone()).await;
                ctx.metrics.observe(M::KIND, start, r.is_err());
                r
            },
            |obj: Arc<M>, err: &members::MemberError, _| {
                let name = agent::status::key(&*obj);
                tracing::warn!(kind = M::KIND, %name, error = %err, "reconcile failed");
                Action::requeue(std::time::Duration::from_secs(15))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}
