//! Nodes: machines paired with the gateway over its WebSocket (protocol v3). The pairing store,
//! the registry of connected nodes, the handshake and the socket that speaks to them, running a
//! command on one, the owner's approvals of commands, and the audit log of every exec.

pub mod approvals;
pub mod audit;
pub mod handshake;
pub mod registry;
pub mod run;
pub mod socket;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::util::limiter::WindowLimiter;
use crate::util::state_dir::StateDir;

/// New pairing requests one address may make within [`PAIR_WINDOW`].
pub const PAIR_REQUESTS: u32 = 10;
pub const PAIR_WINDOW: Duration = Duration::from_secs(300);

/// The nodes feature's state.
pub struct Nodes {
    pub store: store::PairingStore,
    pub registry: registry::Registry,
    pub pair_limit: WindowLimiter,
    pub approvals: approvals::ExecApprovals,
    pub audit: audit::Audit,
    seq: AtomicU64,
}

impl Nodes {
    pub fn new(state: StateDir) -> Self {
        Self {
            store: store::PairingStore::new(state.clone()),
            registry: registry::Registry::default(),
            pair_limit: WindowLimiter::new(PAIR_REQUESTS, PAIR_WINDOW),
            approvals: approvals::ExecApprovals::default(),
            audit: audit::Audit::new(state.clone()),
            seq: AtomicU64::new(0),
        }
    }

    /// The next `seq` of a broadcast event (one counter for all of them, as in Clawdbot).
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}
