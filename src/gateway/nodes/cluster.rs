//! In a cluster the NodePairing resources are the truth about which nodes are approved: a
//! device asking to pair gets a NodePairing (`approved: false`) the owner can approve with
//! `kubectl patch`; one written beforehand (in Git) pre-approves its key; approvals from the CLI
//! or Telegram are written through to it; its `spec.exec` is the gateway's policy for the node;
//! and its status shows the connection. The gateway reads them from a watched cache, so a
//! connect or a command costs no API call, and a pairing revoked or deleted with kubectl
//! disconnects its node at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::exec::EditError;
use super::handshake::CLOSE_POLICY;
use super::now_ms;
use super::registry::NodeInfo;
use super::store::PendingDevice;
use crate::crd::NodePairing;
use crate::crd::node_pairing::{
    ExecAsk, ExecPolicy, ExecSecurity, NodePairingSpec, NodePhase, approve_command,
};
use crate::exec::{Ask, Policy, Security};
use crate::gateway::Gateway;
use crate::protocol::connect::ROLE_NODE;

/// How long a caller waits for the first list of NodePairings, or for its own write to come
/// back through the watch.
const SYNC_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "the NodePairings of this namespace could not be read yet (is the gateway's Role allowed to list and watch nodepairings?)"
    )]
    NotSynced,
    #[error("writing NodePairing {name}: {source}")]
    Write { name: String, source: kube::Error },
    #[error("{0} kept changing while it was edited; reload and try again")]
    Busy(String),
    #[error(
        "node {0} has no NodePairing in this namespace; approve the node first (its NodePairing is made then)"
    )]
    NoPairing(String),
    #[error(transparent)]
    Edit(#[from] EditError),
}

/// Times an edit is made again after someone else changed the NodePairing first.
const EDIT_ATTEMPTS: usize = 3;
/// The label on the NodePairings the gateway creates for a device asking to pair.
pub const REQUESTED_BY_LABEL: &str = "clawops.dev/requested-by";
pub const REQUESTED_BY: &str = "gateway";
/// Its value on the NodePairings a restore brought back.
pub const RESTORED_BY: &str = "restore";

pub struct ClusterPairings {
    api: Api<NodePairing>,
    namespace: String,
    agent: String,
    cache: Store<NodePairing>,
    /// Taken by [`start`], which feeds the cache from a watch.
    writer: Mutex<Option<reflector::store::Writer<NodePairing>>>,
}

/// The name of the NodePairing the gateway creates for a device.
pub fn name_for(agent: &str, node_id: &str) -> String {
    format!("{agent}-{}", crate::protocol::device::short_id(node_id))
}

fn security_of(s: ExecSecurity) -> Security {
    match s {
        ExecSecurity::Deny => Security::Deny,
        ExecSecurity::Allowlist => Security::Allowlist,
        ExecSecurity::Full => Security::Full,
    }
}

/// The gateway's policy for a node, from its NodePairing's `spec.exec`.
pub fn policy_of(exec: &ExecPolicy) -> Policy {
    Policy {
        security: security_of(exec.security),
        ask: match exec.ask {
            ExecAsk::Off => Ask::Off,
            ExecAsk::OnMiss => Ask::OnMiss,
            ExecAsk::Always => Ask::Always,
        },
        ask_fallback: security_of(exec.ask_fallback),
    }
}

/// The phase the gateway records when a node connects or goes: a node whose pairing is no
/// longer approved is Revoked, not merely Disconnected.
pub fn phase_on(connected: bool, approved: bool) -> NodePhase {
    match (connected, approved) {
        (_, false) => NodePhase::Revoked,
        (true, true) => NodePhase::Connected,
        (false, true) => NodePhase::Disconnected,
    }
}

/// Whether `np` lets the device with `public_key` connect.
fn admits(np: &NodePairing, public_key: &str) -> bool {
    np.spec.approved && np.spec.public_key == public_key
}

impl ClusterPairings {
    pub fn new(client: kube::Client, namespace: &str, agent: &str) -> Self {
        let (cache, writer) = reflector::store();
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            agent: agent.into(),
            cache,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// The kubectl command that approves the device's NodePairing (the one written in Git, or
    /// the one the gateway creates).
    pub fn approve_command(&self, node_id: &str) -> String {
        let name = self
            .cached(node_id)
            .map(|np| np.name_any())
            .unwrap_or_else(|| name_for(&self.agent, node_id));
        approve_command(Some(&self.namespace), &name)
    }

    /// Whether the first list of NodePairings has arrived.
    pub fn synced(&self) -> bool {
        matches!(self.cache.wait_until_ready().now_or_never(), Some(Ok(())))
    }

    async fn ready(&self) -> Result<(), ClusterError> {
        match tokio::time::timeout(SYNC_WAIT, self.cache.wait_until_ready()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ClusterError::NotSynced),
        }
    }

    fn cached(&self, node_id: &str) -> Option<Arc<NodePairing>> {
        self.cache
            .find(|np| np.spec.agent_ref == self.agent && np.spec.node_id == node_id)
    }

    /// This Agent's NodePairing for `node_id`, if there is one.
    pub async fn find(&self, node_id: &str) -> Result<Option<Arc<NodePairing>>, ClusterError> {
        self.ready().await?;
        Ok(self.cached(node_id))
    }

    /// Waits until the cache shows what `done` looks for: a write is seen by the next reader
    /// (a node reconnecting right after its approval must find it approved).
    async fn settle(&self, node_id: &str, done: impl Fn(Option<&NodePairing>) -> bool) {
        let deadline = tokio::time::Instant::now() + SYNC_WAIT;
        while !done(self.cached(node_id).as_deref()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Creates the pending NodePairing of a device asking to pair (kept if it exists).
    pub async fn request(&self, d: &PendingDevice) -> Result<(), ClusterError> {
        let spec = self.spec(&d.device_id, &d.public_key, d.display_name.as_deref());
        self.create(&name_for(&self.agent, &d.device_id), spec, REQUESTED_BY)
            .await
            .map(|_| ())
    }

    /// A NodePairing spec of this Agent, not approved, with the default exec settings.
    fn spec(&self, node_id: &str, public_key: &str, display_name: Option<&str>) -> NodePairingSpec {
        NodePairingSpec {
            agent_ref: self.agent.clone(),
            node_id: node_id.into(),
            public_key: public_key.into(),
            display_name: display_name.map(str::to_string),
            approved: false,
            exec: ExecPolicy::default(),
        }
    }

    /// Creates NodePairing `name` from `spec`, labelled with who asked; `false` when the name
    /// is taken (it is kept).
    async fn create(
        &self,
        name: &str,
        spec: NodePairingSpec,
        requested_by: &str,
    ) -> Result<bool, ClusterError> {
        let mut np = NodePairing::new(name, spec);
        np.metadata.labels = Some([(REQUESTED_BY_LABEL.into(), requested_by.into())].into());
        match self.api.create(&PostParams::default(), &np).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(source) => Err(ClusterError::Write {
                name: name.into(),
                source,
            }),
        }
    }

    /// The name the gateway gives the NodePairing of `node_id`.
    pub fn name_of(&self, node_id: &str) -> String {
        name_for(&self.agent, node_id)
    }

    /// This Agent's NodePairings.
    pub async fn all(&self) -> Result<Vec<Arc<NodePairing>>, ClusterError> {
        self.ready().await?;
        let mut all: Vec<_> = self
            .cache
            .state()
            .into_iter()
            .filter(|np| np.spec.agent_ref == self.agent)
            .collect();
        all.sort_by_key(|np| np.name_any());
        Ok(all)
    }

    /// Makes the NodePairing a restore brought, for this Agent: under its old `name` when that
    /// is free (so a copy kept in Git still names it), else the gateway's name for the node.
    /// The node's own NodePairing in the namespace stands, with one exception: a pending
    /// request the gateway made for the same key while the restore waited is approved with
    /// the restored settings. Whether it changed anything.
    pub async fn adopt(&self, name: &str, mut spec: NodePairingSpec) -> Result<bool, ClusterError> {
        spec.agent_ref = self.agent.clone();
        let node_id = spec.node_id.clone();
        match self.find(&node_id).await? {
            Some(np) => {
                let requested =
                    np.labels().get(REQUESTED_BY_LABEL).map(String::as_str) == Some(REQUESTED_BY);
                if !requested || np.spec.approved || np.spec.public_key != spec.public_key {
                    return Ok(false);
                }
                self.patch_spec(
                    &np.name_any(),
                    json!({ "approved": true, "exec": spec.exec }),
                )
                .await?;
            }
            None => {
                if !self.create(name, spec.clone(), RESTORED_BY).await?
                    && !self
                        .create(&name_for(&self.agent, &node_id), spec, RESTORED_BY)
                        .await?
                {
                    return Ok(false);
                }
            }
        }
        self.settle(&node_id, |np| np.is_some_and(|np| np.spec.approved))
            .await;
        Ok(true)
    }

    async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> Result<(), ClusterError> {
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .map(|_| ())
            .map_err(|source| ClusterError::Write {
                name: name.into(),
                source,
            })
    }

    /// Sets `spec.approved` of the device's NodePairing (creating it when approving one that has
    /// none), and waits until the cache shows it.
    pub async fn set_approved(
        &self,
        node_id: &str,
        public_key: &str,
        display_name: Option<&str>,
        approved: bool,
    ) -> Result<(), ClusterError> {
        let name = match self.find(node_id).await? {
            Some(np) if np.spec.approved == approved => return Ok(()),
            Some(np) => np.name_any(),
            None if approved => {
                let name = name_for(&self.agent, node_id);
                self.create(
                    &name,
                    self.spec(node_id, public_key, display_name),
                    REQUESTED_BY,
                )
                .await?;
                name
            }
            None => return Ok(()),
        };
        self.patch_spec(&name, json!({ "approved": approved }))
            .await?;
        self.settle(node_id, |np| {
            np.is_some_and(|np| np.spec.approved == approved)
        })
        .await;
        Ok(())
    }

    /// The gateway's exec settings for a node: its NodePairing's `spec.exec`, the default when it
    /// has none.
    pub async fn exec(&self, node_id: &str) -> Result<ExecPolicy, ClusterError> {
        Ok(self
            .find(node_id)
            .await?
            .map(|np| np.spec.exec.clone())
            .unwrap_or_default())
    }

    /// Where a node's exec settings are kept, for the owner.
    pub fn source(&self, node_id: &str) -> String {
        let name = self
            .cached(node_id)
            .map(|np| np.name_any())
            .unwrap_or_else(|| name_for(&self.agent, node_id));
        format!("NodePairing {}/{name}", self.namespace)
    }

    /// Replaces the NodePairing's `spec.exec` with what `change` makes of it, and waits until the
    /// cache shows it. The patch names the resourceVersion it was made from, so an edit made
    /// meanwhile (kubectl, GitOps, another tab) is not overwritten: the change is made again
    /// from the newer version.
    pub async fn edit_exec(
        &self,
        node_id: &str,
        change: impl Fn(&ExecPolicy) -> Result<ExecPolicy, EditError>,
    ) -> Result<ExecPolicy, ClusterError> {
        for _ in 0..EDIT_ATTEMPTS {
            let Some(np) = self.find(node_id).await? else {
                return Err(ClusterError::NoPairing(node_id.to_string()));
            };
            let next = change(&np.spec.exec)?;
            if next == np.spec.exec {
                return Ok(next);
            }
            let name = np.name_any();
            // The whole object, with an empty allowlist written out: a merge patch leaves out
            // what it does not name.
            let mut exec = serde_json::to_value(&next).expect("exec serializes");
            exec["allowlist"] = json!(next.allowlist);
            let patch = json!({
                "metadata": { "resourceVersion": np.resource_version() },
                "spec": { "exec": exec },
            });
            match self
                .api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {
                    self.settle(node_id, |np| np.is_some_and(|np| np.spec.exec == next))
                        .await;
                    return Ok(next);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let seen = np.resource_version();
                    self.settle(node_id, |np| {
                        np.is_none_or(|np| np.resource_version() != seen)
                    })
                    .await;
                }
                Err(source) => return Err(ClusterError::Write { name, source }),
            }
        }
        Err(ClusterError::Busy(self.source(node_id)))
    }

    /// Deletes the NodePairing the gateway made for a device's request, when the owner rejects
    /// the request; one written by the owner (in Git) stays.
    pub async fn forget(&self, node_id: &str) -> Result<(), ClusterError> {
        let Some(np) = self.find(node_id).await? else {
            return Ok(());
        };
        let ours = np.labels().get(REQUESTED_BY_LABEL).map(String::as_str) == Some(REQUESTED_BY);
        if np.spec.approved || !ours {
            return Ok(());
        }
        let name = np.name_any();
        match self.api.delete(&name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => return Err(ClusterError::Write { name, source }),
        }
        self.settle(node_id, |np| np.is_none()).await;
        Ok(())
    }

    /// Mirrors a connection into the status (phase, last seen, platform, version, address,
    /// commands).
    pub async fn connected(&self, info: &NodeInfo, connected: bool) {
        let Ok(Some(np)) = self.find(&info.node_id).await else {
            return;
        };
        let status = json!({ "status": {
            "phase": phase_on(connected, np.spec.approved),
            "lastSeen": Timestamp::now().to_string(),
            "platform": info.platform,
            "version": info.version,
            "remoteAddress": info.remote_ip,
            "commands": info.commands,
        }});
        if let Err(e) = self
            .api
            .patch_status(
                &np.name_any(),
                &PatchParams::default(),
                &Patch::Merge(status),
            )
            .await
        {
            tracing::warn!(nodepairing = %np.name_any(), error = %e, "NodePairing status not written");
        }
    }

    /// The connected nodes whose NodePairing no longer admits them (not approved, another key,
    /// or deleted), with why.
    fn unwelcome(&self, connected: &[(String, String)]) -> Vec<(String, &'static str)> {
        connected
            .iter()
            .filter_map(|(node_id, public_key)| match self.cached(node_id) {
                None => Some((node_id.clone(), "pairing deleted")),
                Some(np) if !admits(&np, public_key) => Some((node_id.clone(), "pairing revoked")),
                Some(_) => None,
            })
            .collect()
    }
}

/// Feeds the NodePairing cache from a watch of the namespace and, after each change, disconnects
/// the nodes whose pairing was revoked or deleted (their device token is revoked too, so they
/// ask to pair again).
pub fn start(gw: &Arc<Gateway>) -> Option<tokio::task::JoinHandle<()>> {
    let cluster = gw.nodes.cluster.as_ref()?;
    let writer = cluster.writer.lock().expect("writer lock").take()?;
    let stream = watcher(cluster.api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let gw = gw.clone();
    Some(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            // A change concerns its own node (the gateway's own status writes come back here
            // too); after a relist, whatever went while the watch was down concerns them all.
            match event {
                Ok(watcher::Event::Apply(np) | watcher::Event::Delete(np)) => {
                    enforce(&gw, Some(&np.spec.node_id)).await
                }
                Ok(watcher::Event::InitDone) => enforce(&gw, None).await,
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Err(e) => tracing::warn!(error = %e, "NodePairing watch failed; retrying"),
            }
        }
    }))
}

/// Disconnects the connected nodes (only `node_id`, when given) whose pairing no longer admits
/// them.
async fn enforce(gw: &Gateway, node_id: Option<&str>) {
    let Some(cluster) = &gw.nodes.cluster else {
        return;
    };
    let nodes = match node_id {
        Some(id) => gw.nodes.registry.get(id).into_iter().collect(),
        None => gw.nodes.registry.list(),
    };
    let connected: Vec<(String, String)> = nodes
        .into_iter()
        .filter_map(|n| {
            let key = gw.nodes.store.public_key(&n.node_id)?;
            Some((n.node_id, key))
        })
        .collect();
    for (node_id, why) in cluster.unwelcome(&connected) {
        let short = crate::protocol::device::short_id(&node_id);
        if let Err(e) = gw.nodes.store.revoke(&node_id, ROLE_NODE, now_ms()) {
            tracing::warn!(node = %short, error = %e, "device token not revoked");
        }
        if gw.nodes.registry.kick(&node_id, CLOSE_POLICY, why).await {
            tracing::info!(node = %short, %why, "node disconnected: its NodePairing no longer approves it");
        }
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
