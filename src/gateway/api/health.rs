//! What `/health` (and `/api/status`) say about the gateway: the agent, the model, each channel
//! (configured, reachable, its bot and approved senders), the API token and what is disabled.

use serde_json::{Value, json};

use crate::gateway::Gateway;

/// The `/health` body; `ok` only when nothing is disabled and every channel is reachable.
pub async fn report(gw: &Gateway) -> Value {
    let cfg = &gw.config;
    let mut channels = Vec::new();
    for c in &gw.channels {
        let probe = c.probe.lock().await.clone();
        channels.push(json!({
            "name": c.name, "kind": "telegram", "configured": true,
            "ok": probe.username.is_some() && probe.error.is_none(), "bot": probe.username.map(|u| format!("@{u}")), "problem": probe.error,
            "approvedSenders": c.pairing.allowed_count().await,
        }));
    }
    for (name, why) in &gw.channel_problems {
        channels.push(json!({"name": name, "kind": "telegram", "configured": false, "ok": false, "problem": why}));
    }
    let reachable = channels.iter().all(|c| c["ok"] == true);
    let (offered, off) = crate::gateway::tools::offered(gw);
    json!({
        "ok": gw.disabled().is_empty() && reachable,
        "agent": {"id": cfg.agent.id, "name": cfg.agent.name},
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": gw.started.elapsed().as_secs(),
        "model": {
            "primary": cfg.agent.model.primary,
            "configured": gw.model_problem.is_none(),
            "problem": gw.model_problem,
        },
        "channels": channels,
        "auth": {"configured": gw.auth.configured(), "source": gw.auth.source()},
        "tools": {"offered": offered.iter().map(|d| d.name).collect::<Vec<_>>(), "off": off},
        "disabled": gw.disabled(),
    })
}
