//! `clawops node run`: this machine as a node of a gateway (the node host).

use std::path::PathBuf;

use clap::Subcommand;
use secrecy::SecretString;

use crate::node::client::{self, NodeOptions};
use crate::util::state_dir::StateDir;

#[derive(Subcommand)]
pub enum NodeAction {
    /// Pair with a gateway and run the commands this machine's exec policy allows. Runs until
    /// stopped; reconnects by itself.
    Run {
        /// The gateway: wss://host[:port] (Tailscale serve, HTTPS ingress), or ws://host[:port].
        #[arg(long)]
        gateway: String,
        /// The gateway token, when the gateway asks for it at first pairing (after approval
        /// the node uses its own device token).
        #[arg(long, env = "CLAWOPS_GATEWAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The name the owner sees (default: this machine's host name).
        #[arg(long)]
        display_name: Option<String>,
        /// Where the node keeps its key, device token and exec policy (`~/.clawops/node`).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".into())
}

pub async fn run(action: NodeAction) -> anyhow::Result<()> {
    match action {
        NodeAction::Run {
            gateway,
            token,
            display_name,
            state_dir,
        } => {
            let gateway = client::normalise_url(&gateway).map_err(anyhow::Error::msg)?;
            let dir = state_dir.unwrap_or_else(|| super::default_state_dir().join("node"));
            let state = StateDir::open(&dir)?;
            let opts = NodeOptions {
                gateway,
                token: token
                    .filter(|t| !t.trim().is_empty())
                    .map(SecretString::from),
                display_name: display_name.unwrap_or_else(host_name),
                state,
            };
            client::run(opts, crate::util::shutdown_signal()).await
        }
    }
}
