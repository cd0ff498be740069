//! A NodePairing is Ready when its node id is the SHA-256 of its public key and the owner
//! approved it; the operator moves its phase between Pending, Approved and Revoked (the gateway
//! owns Connected and Disconnected).

use base64::Engine;
use kube::ResourceExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Member, MemberError};
use crate::conditions::Cond;
use crate::consts::CONDITION_READY;
use crate::crd::node_pairing::{NodePhase, approve_command};
use crate::crd::{Agent, CommonStatus, NodePairing};
use crate::operator::context::Context;
use crate::util::hex;

impl Member for NodePairing {
    const KIND: &'static str = "NodePairing";
    const FOLLOWS_AGENT: bool = false;
    fn agent_ref(&self) -> &str {
        &self.spec.agent_ref
    }
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    async fn check(&self, _agent: &Agent, _ctx: &Context) -> Result<(Cond, Value), MemberError> {
        let current = self.status.as_ref().and_then(|s| s.phase);
        let (ready, phase) = node_pairing_ready(self, current);
        // Connected/Disconnected belong to the gateway; only move between Pending and Approved.
        let keep = matches!(
            current,
            Some(NodePhase::Connected | NodePhase::Disconnected)
        ) && self.spec.approved;
        let extra = if keep || current == phase {
            json!({})
        } else {
            json!({ "phase": phase })
        };
        Ok((ready, extra))
    }
}

/// Ready and phase of a NodePairing: the node id must be the SHA-256 of the public key, and the
/// owner must have approved it. One that is not approved after it was (its `current` phase is
/// past Pending) is Revoked.
pub fn node_pairing_ready(
    np: &NodePairing,
    current: Option<NodePhase>,
) -> (Cond, Option<NodePhase>) {
    let derived = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(np.spec.public_key.trim_end_matches('='))
        .ok()
        .filter(|k| k.len() == 32)
        .map(|k| hex(&Sha256::digest(&k)));
    match derived {
        None => (
            Cond::is_false(
                CONDITION_READY,
                "InvalidPublicKey",
                "spec.publicKey is not a raw 32-byte Ed25519 key in unpadded base64url",
            ),
            None,
        ),
        Some(id) if id != np.spec.node_id => (
            Cond::is_false(
                CONDITION_READY,
                "NodeIdMismatch",
                format!("spec.nodeId must be the SHA-256 of spec.publicKey, which is {id}"),
            ),
            None,
        ),
        Some(_) if !np.spec.approved && current.is_some_and(|p| p != NodePhase::Pending) => (
            Cond::is_false(
                CONDITION_READY,
                "Revoked",
                format!(
                    "the node's pairing was revoked; approve it again with: {}",
                    approve_command(None, &np.name_any())
                ),
            ),
            Some(NodePhase::Revoked),
        ),
        Some(_) if !np.spec.approved => (
            Cond::is_false(
                CONDITION_READY,
                "PendingApproval",
                format!(
                    "approve the node with: {}",
                    approve_command(None, &np.name_any())
                ),
            ),
            Some(NodePhase::Pending),
        ),
        Some(_) => (
            Cond::is_true(CONDITION_READY, "Approved", "the node may connect"),
            Some(NodePhase::Approved),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::node_pairing::{ExecPolicy, NodePairingSpec};
    use crate::protocol::device;

    fn pairing(approved: bool) -> NodePairing {
        let key = device::generate_key();
        NodePairing::new(
            "shrimp-desk",
            NodePairingSpec {
                agent_ref: "shrimp".into(),
                node_id: device::device_id(&key.verifying_key()),
                public_key: device::encode_public_key(&key.verifying_key()),
                display_name: None,
                approved,
                exec: ExecPolicy::default(),
            },
        )
    }

    #[test]
    fn a_pairing_is_pending_until_approved_and_revoked_after() {
        let (c, phase) = node_pairing_ready(&pairing(false), None);
        assert_eq!(
            (phase, c.reason.as_str()),
            (Some(NodePhase::Pending), "PendingApproval")
        );
        assert!(c.message.contains("kubectl patch nodepairing shrimp-desk"));
        let (c, phase) = node_pairing_ready(&pairing(true), Some(NodePhase::Pending));
        assert_eq!(
            (phase, c.reason.as_str()),
            (Some(NodePhase::Approved), "Approved")
        );
        for was in [
            NodePhase::Approved,
            NodePhase::Connected,
            NodePhase::Disconnected,
        ] {
            let (c, phase) = node_pairing_ready(&pairing(false), Some(was));
            assert_eq!(
                (phase, c.reason.as_str()),
                (Some(NodePhase::Revoked), "Revoked"),
                "{was:?}"
            );
        }
        let (_, phase) = node_pairing_ready(&pairing(true), Some(NodePhase::Revoked));
        assert_eq!(phase, Some(NodePhase::Approved), "approved again");
        let mut wrong = pairing(true);
        wrong.spec.node_id = "0".repeat(64);
        assert_eq!(node_pairing_ready(&wrong, None).1, None);
    }
}
