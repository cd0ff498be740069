//! Small pieces every part of the binary shares: the stop signal, log set-up, hex encoding and
//! the reading of network failures.

pub mod hex;
pub mod limiter;
pub mod net_cause;
pub mod shutdown;
pub mod telemetry;

pub use hex::hex;
pub use shutdown::shutdown_signal;
