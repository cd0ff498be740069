//! A NodePairing is Ready when its node id is the SHA-256 of its public key and the owner
//! approved it; the operator moves its phase only between Pending and Approved.

use base64::Engine;
use kube::ResourceExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Member, MemberError};
use crate::conditions::Cond;
use crate::consts::CONDITION_READY;
use crate::crd::node_pairing::NodePhase;
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
        let (ready, phase) = node_pairing_ready(self);
        let current = self.status.as_ref().and_then(|s| s.phase);
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
/// owner must have approved it.
pub fn node_pairing_ready(np: &NodePairing) -> (Cond, Option<NodePhase>) {
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
        Some(_) if !np.spec.approved => (
            Cond::is_false(
                CONDITION_READY,
                "PendingApproval",
                format!(
                    "approve the node with: kubectl patch nodepairing {} --type merge -p '{{\"spec\":{{\"approved\":true}}}}'",
                    np.name_any()
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
