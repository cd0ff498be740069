//! The gateway WebSocket protocol v3 that nodes speak (reference §5), shared by the gateway and
//! the node host: frames, the handshake, device identity and the signed connect string. Pure: no
//! sockets here.

pub mod connect;
pub mod device;
pub mod frames;
pub mod invoke;
