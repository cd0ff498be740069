//! The plan: from an Agent and its members, already read, to the objects and gateway config it
//! needs — resolve → validate → [`plan`] → build. Pure: no client, no I/O; the operator,
//! `render` and `gateway --from` all plan through [`plan`].

pub mod build;
pub mod gateway_config;
pub mod resolve;
pub mod validate;

use std::sync::Arc;

use kube::ResourceExt;

use crate::crd::{Agent, Channel, Cron, Exposure};
use gateway_config::{ConfigInputs, GatewayConfig};
use resolve::Resolved;
use validate::Problem;

/// Where the planned gateway runs: it decides what the gateway config says about its
/// surroundings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsIn {
    /// In the Agent's namespace, started by the operator (or from `clawops render`'s output):
    /// it mirrors status there and trusts the Tailscale sidecar's loopback address.
    Cluster,
    /// On a machine, from the CR YAML (`gateway --from`): no namespace to mirror into, no
    /// sidecar beside it.
    Standalone,
}

/// A validated Agent: everything the builders and the gateway need, decided once.
#[derive(Debug)]
pub struct AgentPlan {
    pub agent: Arc<Agent>,
    pub exposure: Exposure,
    /// The Agent's Channels, sorted by name.
    pub channels: Vec<Channel>,
    /// Runnable Crons only, sorted by name; the others are in `skipped_crons`.
    pub crons: Vec<Cron>,
    /// Crons left out, with the reason (reported on their own status).
    pub skipped_crons: Vec<(String, String)>,
    /// Digest of the values of every referenced Secret key (never the values).
    pub secret_digest: String,
    /// The gateway's `gateway.json`.
    pub config: GatewayConfig,
}

/// Validates what `resolved` holds and decides the plan for where it runs; every problem found, or
/// the plan.
pub fn plan(resolved: &Resolved, runs_in: RunsIn) -> Result<AgentPlan, Vec<Problem>> {
    let valid = validate::validate(resolved)?;
    let agent = resolved.agent.clone();
    let exposure = agent.spec.gateway.exposure();
    // The sidecar proxies to the gateway over loopback and sets the forwarded headers.
    let trusted: &[&str] = match (runs_in, &exposure) {
        (RunsIn::Cluster, Exposure::TailscaleSidecar(_)) => &["127.0.0.1", "::1"],
        _ => &[],
    };
    let config = gateway_config::render(&ConfigInputs {
        agent: &agent,
        channels: &valid.channels,
        crons: &valid.crons,
        public_url: exposure
            .configured_url()
            .map(|u| u + agent.spec.gateway.base_path().unwrap_or_default()),
        extra_trusted_proxies: trusted,
        namespace: match runs_in {
            RunsIn::Cluster => agent.namespace(),
            RunsIn::Standalone => None,
        },
    });
    Ok(AgentPlan {
        agent,
        exposure,
        channels: valid.channels,
        crons: valid.crons,
        skipped_crons: valid.skipped_crons,
        secret_digest: valid.secret_digest,
        config,
    })
}
