//! Small pieces every part of the binary shares: the stop signal, log set-up, hex encoding, the
//! reading of network failures, a per-address limiter and the atomic state directory.

#[cfg(test)]
pub mod fuzz;
pub mod hex;
pub mod jsonl;
pub mod limiter;
pub mod net_cause;
pub mod schedule;
pub mod shutdown;
pub mod state_dir;
pub mod telemetry;
pub mod uuid;

pub use hex::hex;
pub use shutdown::shutdown_signal;
