//! `clawops operator`: runs the controllers (after winning leader election), serves health and
//! metrics, and shuts down cleanly on SIGTERM.

pub mod agent;
pub mod apply;
pub mod context;
mod controllers;
pub mod health;
pub mod http;
pub mod members;
pub mod metrics;
pub mod rbac;
pub mod trim;

use crate::util::shutdown_signal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use kube::Client;
use tokio::sync::watch;

use crate::operator::context::Context;
pub use controllers::{AGENT_DEBOUNCE, DEFAULT_CONCURRENCY, run_controllers};
use health::Health;
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
    /// Reconciles of each kind at most in flight at once.
    pub concurrency: u16,
}

pub async fn run(opts: OperatorOptions) -> anyhow::Result<()> {
    let config = kube::Config::infer().await.map_err(|e| {
        anyhow::anyhow!("no Kubernetes client config (in-cluster or KUBECONFIG): {e}")
    })?;
    let api_url = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .map_err(|e| anyhow::anyhow!("cannot build a client for the API server {api_url}: {e}"))?;
    tracing::info!(api = %api_url, concurrency = opts.concurrency, "starting");
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(api_url));
    let state = Arc::new(HttpState {
        metrics: metrics.clone(),
        leading: false.into(),
        standby: false.into(),
        health: health.clone(),
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
    state.leading.store(true, Ordering::Relaxed);
    let trimmer = tokio::spawn(trim::run(metrics.clone()));
    let controllers = run_controllers(
        client,
        &opts.namespace,
        ctx,
        health,
        opts.concurrency,
        stopped.clone(),
    );
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
    trimmer.abort();
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}
