//! What the node is doing, for `clawops node status`: written to `status.json` in its state dir
//! at every change of state.

use serde::{Deserialize, Serialize};

use crate::util::state_dir::{StateDir, StateError};

pub const FILE: &str = "status.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Connecting,
    Connected,
    /// Waiting for the owner's approval.
    PairingRequired,
    /// The gateway refused this node.
    Refused,
    /// The gateway could not be reached.
    Unreachable,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub state: State,
    pub gateway: String,
    pub node_id: String,
    pub display_name: String,
    pub since: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub fn write(state: &StateDir, status: &NodeStatus) -> Result<(), StateError> {
    state.write(FILE, status)
}

pub fn read(state: &StateDir) -> Result<Option<NodeStatus>, StateError> {
    state.read(FILE)
}
