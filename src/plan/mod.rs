//! The plan: from an Agent and its members, already read, to the objects and gateway config it
//! needs — resolve → validate → build. Pure: no client, no I/O; the operator, `render` and
//! `gateway --from` all plan through here.

pub mod build;
pub mod gateway_config;
pub mod resolve;
pub mod validate;
