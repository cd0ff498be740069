//! The node's own exec policy: `exec-approvals.json` in its state dir, in Clawdbot's format
//! (`defaults`, then `agents.main`, with `agents["*"]` merged into every agent). Read at every
//! run, so an edit applies at once; unknown keys are kept when the node writes it back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::exec::{AllowEntry, Ask, Policy, Security};
use crate::util::state_dir::{StateDir, StateError};

pub const FILE: &str = "exec-approvals.json";
/// The agent whose entry applies (Clawdbot's default agent).
pub const AGENT: &str = "main";
const ANY_AGENT: &str = "*";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<Ask>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_fallback: Option<Security>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentEntry {
    #[serde(flatten)]
    pub level: Level,
    #[serde(default)]
    pub allowlist: Vec<AllowEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalsFile {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Level>,
    #[serde(default)]
    pub agents: BTreeMap<String, AgentEntry>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Default for ApprovalsFile {
    /// What a new node starts with: allowlist, ask on a miss, deny when nobody answers, and an
    /// empty allowlist — every command but the stdin-only safe bins is asked about.
    fn default() -> Self {
        Self {
            version: 1,
            defaults: Some(Level {
                security: Some(Security::Allowlist),
                ask: Some(Ask::OnMiss),
                ask_fallback: Some(Security::Deny),
                other: BTreeMap::new(),
            }),
            agents: BTreeMap::from([(AGENT.to_string(), AgentEntry::default())]),
            other: BTreeMap::new(),
        }
    }
}

impl ApprovalsFile {
    /// The policy of `agent`: its own value, else `*`'s, else the defaults, else the built-in.
    pub fn policy(&self, agent: &str) -> Policy {
        let built_in = Policy::default();
        let levels: Vec<&Level> = [
            self.agents.get(agent).map(|a| &a.level),
            self.agents.get(ANY_AGENT).map(|a| &a.level),
            self.defaults.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        Policy {
            security: levels
                .iter()
                .find_map(|l| l.security)
                .unwrap_or(built_in.security),
            ask: levels.iter().find_map(|l| l.ask).unwrap_or(built_in.ask),
            ask_fallback: levels
                .iter()
                .find_map(|l| l.ask_fallback)
                .unwrap_or(built_in.ask_fallback),
        }
    }

    /// `*`'s entries, then `agent`'s.
    pub fn allowlist(&self, agent: &str) -> Vec<AllowEntry> {
        [ANY_AGENT, agent]
            .iter()
            .filter_map(|a| self.agents.get(*a))
            .flat_map(|a| a.allowlist.iter().cloned())
            .collect()
    }

    /// Adds `pattern` to `agent`'s allowlist unless it is there already.
    pub fn allow(&mut self, agent: &str, pattern: &str) -> bool {
        let list = &mut self.agents.entry(agent.into()).or_default().allowlist;
        if list.iter().any(|e| e.pattern == pattern) {
            return false;
        }
        let mut entry = AllowEntry::new(pattern);
        entry.id = Some(crate::util::uuid::uuid_v4());
        list.push(entry);
        true
    }

    /// Records that `patterns` of `agent` matched `command` now.
    pub fn record_use(
        &mut self,
        agent: &str,
        patterns: &[String],
        command: &str,
        resolved: Option<&str>,
        now_ms: i64,
    ) {
        if let Some(a) = self.agents.get_mut(agent) {
            for e in a
                .allowlist
                .iter_mut()
                .filter(|e| patterns.contains(&e.pattern))
            {
                e.last_used_at = Some(now_ms);
                e.last_used_command = Some(command.into());
                e.last_resolved_path = resolved.map(str::to_string);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalsError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{path}: version {version} is not supported; this node reads version 1")]
    Version { path: String, version: u32 },
}

/// Reads the file, creating it with the defaults when it is missing.
pub fn load(state: &StateDir) -> Result<ApprovalsFile, ApprovalsError> {
    match state.read::<ApprovalsFile>(FILE)? {
        Some(f) if f.version != 1 => Err(ApprovalsError::Version {
            path: state.path().join(FILE).display().to_string(),
            version: f.version,
        }),
        Some(f) => Ok(f),
        None => {
            let f = ApprovalsFile::default();
            state.write(FILE, &f)?;
            Ok(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_then_any_then_defaults_decide_each_field() {
        let f: ApprovalsFile = serde_json::from_value(serde_json::json!({
            "version": 1,
            "socket": {"path": "~/.clawdbot/exec-approvals.sock"},
            "defaults": {"security": "deny", "ask": "on-miss", "askFallback": "deny"},
            "agents": {
                "main": {"security": "allowlist", "allowlist": [{"pattern": "/usr/bin/uptime"}]},
                "*": {"ask": "always", "allowlist": [{"pattern": "/usr/bin/ls"}]}
            }
        }))
        .unwrap();
        let p = f.policy("main");
        assert_eq!(
            (p.security, p.ask, p.ask_fallback),
            (Security::Allowlist, Ask::Always, Security::Deny)
        );
        assert_eq!(f.policy("other").security, Security::Deny);
        let patterns: Vec<String> = f.allowlist("main").into_iter().map(|e| e.pattern).collect();
        assert_eq!(patterns, ["/usr/bin/ls", "/usr/bin/uptime"]);
        let back = serde_json::to_value(&f).unwrap();
        assert_eq!(
            back["socket"]["path"], "~/.clawdbot/exec-approvals.sock",
            "unknown keys are kept"
        );
    }

    #[test]
    fn allowing_adds_once_and_uses_are_recorded() {
        let mut f = ApprovalsFile::default();
        assert!(f.allow("main", "/usr/bin/df"));
        assert!(!f.allow("main", "/usr/bin/df"));
        f.record_use(
            "main",
            &["/usr/bin/df".into()],
            "df -h",
            Some("/usr/bin/df"),
            42,
        );
        let e = &f.agents["main"].allowlist[0];
        assert_eq!(
            (e.last_used_at, e.last_used_command.as_deref()),
            (Some(42), Some("df -h"))
        );
        assert!(e.id.is_some());
    }
}
