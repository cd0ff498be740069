//! Nodes: machines paired with the gateway over its WebSocket (protocol v3). The pairing store,
//! the registry of connected nodes and the socket that speaks to them.

pub mod registry;
pub mod store;
