//! Nodes: machines paired with the gateway over its WebSocket (protocol v3). The pairing store,
//! the registry of connected nodes, the handshake and the socket that speaks to them, running a
//! command on one, the owner's approvals of commands, and the audit log of every exec.

mod admit;
pub mod approvals;
pub mod audit;
pub mod cluster;
pub mod devices;
pub mod exec;
pub mod handshake;
pub mod registry;
pub mod restored;
pub mod run;
pub mod socket;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::util::limiter::WindowLimiter;
use crate::util::state_dir::StateDir;

/// Milliseconds since the epoch, the unit of the pairing files and the protocol.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// New pairing requests one address may make within [`PAIR_WINDOW`].
pub const PAIR_REQUESTS: u32 = 10;
pub const PAIR_WINDOW: Duration = Duration::from_secs(300);

/// Why a node's exec settings could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Edit(#[from] exec::EditError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    #[error(transparent)]
    State(#[from] crate::util::state_dir::StateError),
}

/// The nodes feature's state.
pub struct Nodes {
    pub store: store::PairingStore,
    pub registry: registry::Registry,
    pub pair_limit: WindowLimiter,
    pub approvals: approvals::ExecApprovals,
    pub audit: audit::Audit,
    /// Standalone: the gateway's exec settings per node (in a cluster, the NodePairings).
    pub local_exec: exec::LocalExec,
    /// In a cluster: the NodePairings that decide which nodes are approved.
    pub cluster: Option<cluster::ClusterPairings>,
    seq: AtomicU64,
}

impl Nodes {
    pub fn new(state: StateDir) -> Self {
        Self {
            store: store::PairingStore::new(state.clone()),
            registry: registry::Registry::default(),
            pair_limit: WindowLimiter::new(PAIR_REQUESTS, PAIR_WINDOW),
            approvals: approvals::ExecApprovals::default(),
            audit: audit::Audit::new(state.clone(), audit::FILE),
            local_exec: exec::LocalExec::new(state.clone()),
            cluster: None,
            seq: AtomicU64::new(0),
        }
    }

    /// Approves a pending node (request id, node id or prefix); in a cluster its NodePairing
    /// says so too.
    pub async fn approve(&self, id: &str) -> Result<store::PairedDevice, store::StoreError> {
        let d = self.store.approve(id, now_ms())?;
        self.write_through(&d, true).await;
        Ok(d)
    }

    /// Revokes a paired node; in a cluster its NodePairing is set back to not approved.
    pub async fn revoke(&self, id: &str) -> Result<store::PairedDevice, store::StoreError> {
        let d = self
            .store
            .revoke(id, crate::protocol::connect::ROLE_NODE, now_ms())?;
        self.write_through(&d, false).await;
        Ok(d)
    }

    async fn write_through(&self, d: &store::PairedDevice, approved: bool) {
        if let Some(cluster) = &self.cluster
            && let Err(e) = cluster
                .set_approved(
                    &d.device_id,
                    &d.public_key,
                    d.display_name.as_deref(),
                    approved,
                )
                .await
        {
            tracing::error!(node = %&d.device_id[..12], error = %e, "NodePairing not updated; the gateway's own record changed");
        }
    }

    /// Rejects a pending node; in a cluster the NodePairing made for its request goes too.
    pub async fn reject(&self, id: &str) -> Result<store::PendingDevice, store::StoreError> {
        let p = self.store.reject(id, now_ms())?;
        if let Some(cluster) = &self.cluster
            && let Err(e) = cluster.forget(&p.device_id).await
        {
            tracing::error!(node = %crate::protocol::device::short_id(&p.device_id), error = %e, "the rejected node's NodePairing was not deleted");
        }
        Ok(p)
    }

    /// The gateway's exec settings for a node: its NodePairing's `spec.exec` in a cluster, else
    /// the state dir's (the default until the owner edits them).
    pub async fn exec_settings(
        &self,
        node_id: &str,
    ) -> Result<crate::crd::node_pairing::ExecPolicy, ExecError> {
        match &self.cluster {
            Some(c) => Ok(c.exec(node_id).await?),
            None => Ok(self.local_exec.get(node_id)?),
        }
    }

    /// The gateway's policy for a node and the patterns its owner approved in advance.
    pub async fn exec_policy(
        &self,
        node_id: &str,
    ) -> Result<(crate::exec::Policy, Vec<String>), ExecError> {
        let s = self.exec_settings(node_id).await?;
        Ok((cluster::policy_of(&s), s.allowlist))
    }

    /// Where a node's exec settings are kept, for the owner.
    pub fn exec_source(&self, node_id: &str) -> String {
        match &self.cluster {
            Some(c) => c.source(node_id),
            None => self.local_exec.source(),
        }
    }

    /// Applies the owner's `edit` to a node's exec settings, written through before it returns.
    pub async fn edit_exec(
        &self,
        node_id: &str,
        edit: &crate::api::ExecEdit,
    ) -> Result<crate::crd::node_pairing::ExecPolicy, ExecError> {
        match &self.cluster {
            Some(c) => Ok(c.edit_exec(node_id, |cur| exec::apply(cur, edit)).await?),
            None => self
                .local_exec
                .update(node_id, |cur| Ok(exec::apply(cur, edit)?)),
        }
    }

    /// A paired device as the API and the assistant's tools show it: with its connection.
    pub fn paired_node(&self, d: &store::PairedDevice) -> crate::api::PairedNode {
        let live = self.registry.get(&d.device_id);
        let token = d.tokens.get(crate::protocol::connect::ROLE_NODE);
        crate::api::PairedNode {
            node_id: d.device_id.clone(),
            display_name: d.display_name.clone(),
            platform: d.platform.clone(),
            connected: live.is_some(),
            revoked: token.is_none_or(|t| t.revoked_at_ms.is_some()),
            commands: live
                .as_ref()
                .map(|n| n.commands.clone())
                .unwrap_or_default(),
            remote_ip: live.map(|n| n.remote_ip).or_else(|| d.remote_ip.clone()),
            last_seen_ms: token.and_then(|t| t.last_used_at_ms),
            approved_at_ms: d.approved_at_ms,
        }
    }

    /// The next `seq` of a broadcast event (one counter for all of them, as in Clawdbot).
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}
