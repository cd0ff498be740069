//! The exec audit log: one JSON line per command a node was asked to run — allowed, asked,
//! denied, timed out — in `exec/audit.jsonl` (0600): who, node, command, decision, exit code,
//! duration and output size; never the output itself.

use crate::util::jsonl::JsonLog;

pub const FILE: &str = "exec/audit.jsonl";

pub use crate::api::ExecRecord;

/// The exec audit log.
pub type Audit = JsonLog<ExecRecord>;
