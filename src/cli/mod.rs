//! The command line's work beyond parsing: reaching a running gateway (`client`), and the
//! `cron`, `pairing`, `nodes`, `node`, `approvals`, `audit`, `import`, `state` and file-writing
//! (`crd`, `generate`, `render`) subcommands.

pub mod approvals;
pub mod audit;
pub mod backup;
pub mod client;
pub mod cron;
pub mod files;
pub mod import;
pub mod node;
pub mod nodes;
pub mod pairing;
pub mod state;

use std::path::PathBuf;

pub use client::GatewayAccess;

/// Where a standalone gateway keeps its state unless told: `~/.clawops`.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".clawops"))
        .unwrap_or_else(|| PathBuf::from(".clawops"))
}
