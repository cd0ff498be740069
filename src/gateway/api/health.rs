//! What `/health` (and `/api/status`) say about the gateway: the agent, the model, each channel
//! (configured, reachable, its bot and approved senders), the API token and what is disabled;
//! `/api/status` adds the cluster, the nodes and the Crons.

use crate::api::{
    AgentBrief, AuthHealth, ChannelHealth, ClusterBrief, CronBrief, Health, ModelHealth,
    NodesBrief, Status, ToolsHealth,
};
use crate::gateway::Gateway;
use crate::gateway::nodes::now_ms;

/// The `/health` body.
pub async fn report(gw: &Gateway) -> Health {
    let cfg = &gw.config;
    let mut channels = Vec::new();
    for c in &gw.channels {
        let probe = c.probe.lock().await.clone();
        channels.push(ChannelHealth {
            name: c.name.clone(),
            kind: "telegram".into(),
            configured: true,
            ok: probe.username.is_some() && probe.error.is_none(),
            bot: probe.username.map(|u| format!("@{u}")),
            problem: probe.error,
            approved_senders: Some(c.pairing.allowed_count().await),
        });
    }
    for (name, why) in &gw.channel_problems {
        channels.push(ChannelHealth {
            name: name.clone(),
            kind: "telegram".into(),
            configured: false,
            ok: false,
            bot: None,
            problem: Some(why.clone()),
            approved_senders: None,
        });
    }
    let disabled = gw.disabled();
    let (offered, off) = crate::gateway::tools::offered(gw);
    Health {
        ok: disabled.is_empty() && channels.iter().all(|c| c.ok),
        agent: AgentBrief {
            id: cfg.agent.id.clone(),
            name: cfg.agent.name.clone(),
        },
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: gw.started.elapsed().as_secs(),
        model: ModelHealth {
            primary: cfg.agent.model.primary.clone(),
            configured: gw.model_problem.is_none(),
            problem: gw.model_problem.clone(),
        },
        channels,
        auth: AuthHealth {
            configured: gw.auth.configured(),
            source: gw.auth.source().to_string(),
        },
        tools: ToolsHealth {
            offered: offered.iter().map(|d| d.name.to_string()).collect(),
            off,
        },
        disabled,
    }
}

/// The `/api/status` body.
pub async fn status(gw: &Gateway) -> Status {
    let (pending, paired) = gw
        .nodes
        .store
        .list(now_ms())
        .map(|(p, d)| (p.len(), d.len()))
        .unwrap_or_default();
    Status {
        health: report(gw).await,
        cluster: ClusterBrief {
            access: gw.config.agent.cluster_access,
            client: gw.kube.is_some(),
        },
        nodes: NodesBrief {
            connected: gw.nodes.registry.list().len(),
            paired,
            pending,
        },
        crons: gw
            .config
            .crons
            .iter()
            .map(|c| CronBrief {
                name: c.name.clone(),
                schedule: c.schedule.clone(),
                time_zone: c.time_zone.clone(),
            })
            .collect(),
    }
}
