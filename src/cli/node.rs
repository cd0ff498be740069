//! `clawops node run|install|uninstall|status`: this machine as a node of a gateway (the node
//! host), by hand or as a systemd user service.

use std::path::PathBuf;

use clap::Subcommand;
use secrecy::SecretString;

use crate::node::client::{self, NodeOptions};
use crate::node::service::{self, ServiceSpec};
use crate::node::status;
use crate::util::state_dir::StateDir;

/// What `node run` and `node install` are given.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The gateway: wss://host[:port] (Tailscale serve, HTTPS ingress), or ws://host[:port].
    #[arg(long)]
    gateway: String,
    /// The gateway token, when the gateway asks for it at first pairing (after approval the
    /// node uses its own device token).
    #[arg(long, env = "CLAWOPS_GATEWAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The name the owner sees (default: this machine's host name).
    #[arg(long)]
    display_name: Option<String>,
    /// Where the node keeps its key, device token and exec policy (`~/.clawops/node`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Trust only the gateway certificate with this SHA-256 (`sha256:AB:CD:…`), e.g. a
    /// self-signed one; wss:// only.
    #[arg(long)]
    tls_fingerprint: Option<String>,
}

#[derive(Subcommand)]
pub enum NodeAction {
    /// Pair with a gateway and run the commands this machine's exec policy allows. Runs until
    /// stopped; reconnects by itself.
    Run(RunArgs),
    /// Install `node run` as the systemd user service clawops-node.service and start it.
    Install {
        #[command(flatten)]
        run: RunArgs,
        /// Replace an installed unit.
        #[arg(long)]
        force: bool,
    },
    /// Stop and remove the service.
    Uninstall {
        /// The node's state dir (`~/.clawops/node`), where the token file is.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// What the node is doing: connected, waiting for approval, unreachable…
    Status {
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

/// The pinned certificate, which only a wss:// gateway can have.
fn pin(gateway: &str, fingerprint: Option<&str>) -> anyhow::Result<Option<[u8; 32]>> {
    let Some(f) = fingerprint else {
        return Ok(None);
    };
    if !gateway.starts_with("wss://") {
        anyhow::bail!(
            "--tls-fingerprint needs a wss:// (or https://) gateway; {gateway} is not TLS"
        );
    }
    Ok(Some(
        crate::node::tls::parse_fingerprint(f).map_err(anyhow::Error::msg)?,
    ))
}

fn node_dir(state_dir: Option<PathBuf>) -> PathBuf {
    state_dir.unwrap_or_else(|| super::default_state_dir().join("node"))
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
        NodeAction::Run(args) => {
            let gateway = client::normalise_url(&args.gateway).map_err(anyhow::Error::msg)?;
            let tls_fingerprint = pin(&gateway, args.tls_fingerprint.as_deref())?;
            let state = StateDir::open(node_dir(args.state_dir))?;
            let opts = NodeOptions {
                gateway,
                token: args
                    .token
                    .filter(|t| !t.trim().is_empty())
                    .map(SecretString::from),
                display_name: args.display_name.unwrap_or_else(host_name),
                state,
                tls_fingerprint,
            };
            client::run(opts, crate::util::shutdown_signal()).await
        }
        NodeAction::Install { run, force } => {
            let gateway = client::normalise_url(&run.gateway).map_err(anyhow::Error::msg)?;
            pin(&gateway, run.tls_fingerprint.as_deref())?;
            let fingerprint = run.tls_fingerprint.clone();
            let dir = std::path::absolute(node_dir(run.state_dir))?;
            StateDir::open(&dir)?;
            let token = run.token.filter(|t| !t.trim().is_empty());
            let spec = ServiceSpec {
                program: std::env::current_exe()?,
                args: vec![
                    "node".into(),
                    "run".into(),
                    "--gateway".into(),
                    gateway,
                    "--display-name".into(),
                    run.display_name.unwrap_or_else(host_name),
                    "--state-dir".into(),
                    dir.to_string_lossy().into_owned(),
                ]
                .into_iter()
                .chain(
                    fingerprint
                        .into_iter()
                        .flat_map(|f| ["--tls-fingerprint".to_string(), f]),
                )
                .collect(),
                // A user service starts with systemd's short PATH; the node must find programs
                // (and match its allowlist) as it does from this shell.
                env: std::env::var("PATH")
                    .ok()
                    .map(|p| vec![("PATH".to_string(), p)])
                    .unwrap_or_default(),
                env_file: token.as_ref().map(|_| dir.join(service::ENV_FILE)),
            };
            for line in service::install(&spec, token.as_deref(), force)? {
                println!("{line}");
            }
            Ok(())
        }
        NodeAction::Uninstall { state_dir } => {
            for line in service::uninstall(&node_dir(state_dir).join(service::ENV_FILE))? {
                println!("{line}");
            }
            Ok(())
        }
        NodeAction::Status { state_dir } => {
            let dir = node_dir(state_dir);
            let installed = service::unit_dir().join(service::UNIT).exists();
            println!(
                "service: {}",
                match (installed, service::active_state()) {
                    (false, _) => "not installed (`clawops node install`)".to_string(),
                    (true, Some(s)) => format!("{} ({s})", service::UNIT),
                    (true, None) => format!("{} (systemd not reachable)", service::UNIT),
                }
            );
            match status::read(&StateDir::open(&dir)?)? {
                None => println!("node: never started with state dir {}", dir.display()),
                Some(s) => {
                    let state = serde_json::to_value(s.state)?;
                    println!(
                        "node: {} ({}) {} since {}",
                        s.display_name,
                        crate::protocol::device::short_id(&s.node_id),
                        state.as_str().unwrap_or("?"),
                        s.since.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                    println!("gateway: {}", s.gateway);
                    if let Some(e) = s.last_error {
                        println!("last error: {e}");
                    }
                    if s.state == status::State::PairingRequired {
                        println!(
                            "waiting for the owner: `clawops nodes approve {}` on the gateway side, or the Telegram button",
                            crate::protocol::device::short_id(&s.node_id)
                        );
                    }
                }
            }
            Ok(())
        }
    }
}
