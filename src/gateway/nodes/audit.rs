//! The exec audit log: one JSON line per command a node was asked to run — allowed, asked,
//! denied, timed out — in `exec/audit.jsonl` (0600): who, node, command, decision, exit code,
//! duration and output size; never the output itself.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::util::state_dir::StateDir;

pub const FILE: &str = "exec/audit.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRecord {
    pub ts: chrono::DateTime<chrono::Utc>,
    pub node_id: String,
    pub node: String,
    pub command: String,
    /// `ran` (the policy allowed it), `allow-once`, `allow-always`, `denied`, `timed-out`,
    /// `refused` (the node or the gateway's policy said no), `failed` (no answer).
    pub decision: String,
    /// Who decided, when the owner did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub output_bytes: usize,
}

pub struct Audit {
    state: StateDir,
    lock: Mutex<()>,
}

impl Audit {
    pub fn new(state: StateDir) -> Self {
        Self {
            state,
            lock: Mutex::new(()),
        }
    }

    /// Appends a record; a failure is logged, never fatal to the command.
    pub fn record(&self, r: &ExecRecord) {
        let _g = self.lock.lock().expect("audit lock");
        let path = self.state.path().join(FILE);
        let line = serde_json::to_string(r).expect("record serializes") + "\n";
        let written =
            std::fs::create_dir_all(path.parent().expect("has a parent")).and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&path)?
                    .write_all(line.as_bytes())
            });
        if let Err(e) = written {
            tracing::warn!(file = %path.display(), error = %e, "exec audit record not written");
        }
    }

    /// The records, oldest first.
    pub fn read(&self) -> Vec<ExecRecord> {
        std::fs::read_to_string(self.state.path().join(FILE))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
