//! `clawops state load BUNDLE`: puts the approved senders and pending codes of a state bundle
//! (`clawops import` writes one) into a running gateway through its API, or with `--into DIR`
//! into a stopped standalone gateway's state dir. Loading adds; it never takes anything away.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;

use super::GatewayAccess;
use crate::api::{PairingImported, STATE_BUNDLE_VERSION, StateBundle};
use crate::gateway::telegram::pairing::PairingStore;
use crate::util::state_dir::StateDir;

#[derive(Subcommand)]
pub enum StateAction {
    /// Load a state bundle: approved senders keep chatting without pairing again.
    Load {
        bundle: PathBuf,
        /// Write into this state dir instead of going through the running gateway (the
        /// gateway must be stopped: it would overwrite the lists from memory).
        #[arg(long)]
        into: Option<PathBuf>,
    },
}

/// Reads and checks a bundle.
pub fn read_bundle(path: &Path) -> anyhow::Result<StateBundle> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["version"].as_u64());
    match version {
        Some(v) if v > u64::from(STATE_BUNDLE_VERSION) => bail!(
            "{}: a state bundle of version {v}, from a newer clawops; this one reads version {STATE_BUNDLE_VERSION}: upgrade clawops",
            path.display()
        ),
        None => bail!(
            "{}: not a clawops state bundle (no version); `clawops import` writes <name>-state.json",
            path.display()
        ),
        _ => {}
    }
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a clawops state bundle", path.display()))
}

pub async fn run(action: StateAction, access: GatewayAccess) -> anyhow::Result<()> {
    let StateAction::Load { bundle, into } = action;
    let b = read_bundle(&bundle)?;
    match into {
        Some(dir) => {
            if crate::cli::client::answers(&access.url).await {
                bail!(
                    "a gateway answers at {}: it would overwrite what is written into {} from memory; load through it (drop --into), or stop it first",
                    access.url,
                    dir.display()
                );
            }
            let state = StateDir::open(&dir)?;
            for (channel, s) in &b.channels {
                let store = PairingStore::open(state.clone(), channel)?;
                let (a, p) = store.import(s, chrono::Utc::now()).await?;
                println!(
                    "{channel}: {a} approved sender(s) and {p} pending code(s) added to {}",
                    dir.display()
                );
            }
        }
        None => {
            let api = access.client()?;
            for (channel, s) in &b.channels {
                let body = api
                    .post(
                        &format!("/api/pairing/{channel}/import"),
                        &serde_json::to_value(s)?,
                    )
                    .await?;
                let r: PairingImported = serde_json::from_value(body)?;
                println!(
                    "{}: {} approved sender(s) and {} pending code(s) added; {} approved in all",
                    r.channel, r.allowed_added, r.pending_added, r.allowed_total
                );
            }
        }
    }
    Ok(())
}
