//! Immediate alerts between patrols: the gateway watches pods and nodes and tells the owner at
//! once about a crash loop, an OOM kill, a node NotReady or under pressure — once per object and
//! reason per cool-down — and again when the condition clears.

mod board;
mod conditions;
mod notice;
mod tracker;
mod watch;

use std::sync::Arc;

use chrono::TimeDelta;
use kube::Client;
use tokio::task::JoinHandle;

pub use board::Board;
pub use conditions::{Active, node_conditions, pod_conditions};
pub use notice::Notice;
pub use tracker::{Timing, Tracker};
pub use watch::{STATE_FILE, watch};

use super::Gateway;
use crate::crd::agent::ClusterAccess;

/// Starts the alert loop when alerts are on and the Agent may read the cluster; warns when they
/// are on but there is no client.
pub fn start(gw: &Arc<Gateway>) -> Option<JoinHandle<()>> {
    match (off_reason(gw), &gw.kube) {
        (None, Some(client)) => Some(tokio::spawn(run(gw.clone(), client.clone()))),
        (Some(why), _) if gw.config.agent.alerts.is_some() => {
            tracing::warn!("alerts are configured but off: {why}");
            None
        }
        _ => None,
    }
}

/// Why alerts do not run in this gateway, if they do not.
pub fn off_reason(gw: &Gateway) -> Option<String> {
    if gw.config.agent.alerts.is_none() {
        Some("the Agent sets no spec.alerts".into())
    } else if gw.config.agent.cluster_access != ClusterAccess::Read {
        Some("alerts watch the cluster: they need spec.clusterAccess: read".into())
    } else if gw.kube.is_none() {
        Some("there is no Kubernetes client (standalone without a kubeconfig)".into())
    } else {
        None
    }
}

/// The gateway's alert loop: notices go to the configured chat.
pub async fn run(gw: Arc<Gateway>, client: Client) {
    let Some(cfg) = gw.config.agent.alerts.clone() else {
        return;
    };
    let cool_down = crate::crd::common::parse_duration(&cfg.cool_down)
        .and_then(|s| TimeDelta::try_seconds(i64::try_from(s).ok()?))
        .unwrap_or(TimeDelta::minutes(30));
    let cjk = super::assistant::speaks_cjk(&gw.assistant.config);
    tracing::info!(channel = %cfg.deliver.channel, cool_down = %cfg.cool_down, "alerts on");
    let state = Some(gw.state.clone());
    let gw2 = gw.clone();
    let board = gw.alerts.clone();
    watch(
        client,
        Timing::new(cool_down),
        cjk,
        state,
        board,
        move |text| {
            let (gw, cfg) = (gw2.clone(), cfg.clone());
            async move {
                match gw
                    .deliver(&cfg.deliver.channel, &cfg.deliver.to, &text)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!("alert not delivered"),
                    Err(why) => tracing::warn!(%why, "alert not delivered"),
                }
            }
        },
    )
    .await
}
