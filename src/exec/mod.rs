//! Exec approvals, shared by the node host (which enforces them) and the gateway (which asks the
//! owner): the policy, the analysis of a command line and the allowlist check. Pure.

pub mod allowlist;
pub mod analyze;
pub mod policy;

pub use allowlist::{AllowEntry, Check, Host};
pub use policy::{Ask, DenyReason, Policy, Security, Verdict};
