//! In a cluster the NodePairing resources are the truth about which nodes are approved: a
//! device asking to pair gets a NodePairing (`approved: false`) the owner can approve with
//! `kubectl patch`; one written beforehand (in Git) pre-approves its key; approvals from the CLI
//! or Telegram are written through to it; and its status shows the connection.

use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::registry::NodeInfo;
use super::store::PendingDevice;
use crate::crd::node_pairing::{ExecAsk, ExecSecurity, NodePairingSpec};
use crate::crd::{NodePairing, node_pairing::ExecPolicy};
use crate::exec::{Ask, Policy, Security};

pub struct ClusterPairings {
    api: Api<NodePairing>,
    agent: String,
}

/// The name of the NodePairing the gateway creates for a device.
pub fn name_for(agent: &str, node_id: &str) -> String {
    format!("{agent}-{}", &node_id[..12.min(node_id.len())])
}

/// The gateway's policy for a node, from its NodePairing's `spec.exec`.
pub fn policy_of(exec: &ExecPolicy) -> Policy {
    Policy {
        security: match exec.security {
            ExecSecurity::Deny => Security::Deny,
            ExecSecurity::Allowlist => Security::Allowlist,
            ExecSecurity::Full => Security::Full,
        },
        ask: match exec.ask {
            ExecAsk::Off => Ask::Off,
            ExecAsk::OnMiss => Ask::OnMiss,
            ExecAsk::Always => Ask::Always,
        },
        ask_fallback: Security::Deny,
    }
}

impl ClusterPairings {
    pub fn new(client: kube::Client, namespace: &str, agent: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            agent: agent.into(),
        }
    }

    /// This Agent's NodePairing for `node_id`, if there is one.
    pub async fn find(&self, node_id: &str) -> Result<Option<NodePairing>, kube::Error> {
        Ok(self
            .api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|np| np.spec.agent_ref == self.agent && np.spec.node_id == node_id))
    }

    /// Creates the pending NodePairing of a device asking to pair (kept if it exists).
    pub async fn request(&self, d: &PendingDevice) -> Result<(), kube::Error> {
        self.create(&d.device_id, &d.public_key, d.display_name.as_deref())
            .await
    }

    async fn create(
        &self,
        node_id: &str,
        public_key: &str,
        display_name: Option<&str>,
    ) -> Result<(), kube::Error> {
        let np = NodePairing::new(
            &name_for(&self.agent, node_id),
            NodePairingSpec {
                agent_ref: self.agent.clone(),
                node_id: node_id.into(),
                public_key: public_key.into(),
                display_name: display_name.map(str::to_string),
                approved: false,
                exec: ExecPolicy::default(),
            },
        );
        match self.api.create(&PostParams::default(), &np).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets `spec.approved` of the device's NodePairing (creating it when approving one that has
    /// none).
    pub async fn set_approved(
        &self,
        node_id: &str,
        public_key: &str,
        display_name: Option<&str>,
        approved: bool,
    ) -> Result<(), kube::Error> {
        let name = match self.find(node_id).await? {
            Some(np) => np.name_any(),
            None if approved => {
                self.create(node_id, public_key, display_name).await?;
                name_for(&self.agent, node_id)
            }
            None => return Ok(()),
        };
        self.api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "approved": approved } })),
            )
            .await
            .map(|_| ())
    }

    /// Adds `patterns` to the NodePairing's `spec.exec.allowlist` (what the owner always
    /// allowed), keeping what is there.
    pub async fn allow(&self, node_id: &str, patterns: &[String]) -> Result<(), kube::Error> {
        let Some(np) = self.find(node_id).await? else {
            return Ok(());
        };
        let mut list = np.spec.exec.allowlist.clone();
        for p in patterns {
            if !list.contains(p) {
                list.push(p.clone());
            }
        }
        if list == np.spec.exec.allowlist {
            return Ok(());
        }
        self.api
            .patch(
                &np.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "exec": { "allowlist": list } } })),
            )
            .await
            .map(|_| ())
    }

    /// Mirrors a connection into the status (phase, last seen, platform, commands).
    pub async fn connected(&self, info: &NodeInfo, connected: bool) {
        let Ok(Some(np)) = self.find(&info.node_id).await else {
            return;
        };
        let status = json!({ "status": {
            "phase": if connected { "Connected" } else { "Disconnected" },
            "lastSeen": Timestamp::now().to_string(),
            "platform": info.platform,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_policies_follow_the_resource() {
        assert_eq!(name_for("shrimp", &"a".repeat(64)), "shrimp-aaaaaaaaaaaa");
        let p = policy_of(&ExecPolicy {
            security: ExecSecurity::Full,
            ask: ExecAsk::Always,
            allowlist: vec![],
        });
        assert_eq!((p.security, p.ask), (Security::Full, Ask::Always));
        assert_eq!(policy_of(&ExecPolicy::default()), Policy::default());
    }
}
