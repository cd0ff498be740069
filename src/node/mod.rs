//! The node host (`clawops node run`): pairs this machine with a gateway over protocol v3 and
//! runs the commands its owner's exec policy allows. Never imports the gateway or the operator.

pub mod approvals;
pub mod client;
pub mod dedupe;
pub mod host_fs;
pub mod identity;
pub mod invoke;
pub mod run;
pub mod service;
pub mod status;
pub mod tls;
