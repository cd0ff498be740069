//! The gateway's exec settings per node — its policy (security, ask, askFallback) and the
//! patterns the owner approved in advance — and the owner's edits of them. In a cluster they are
//! the node's NodePairing `spec.exec`, so `kubectl get nodepairing` and the Control UI show one
//! truth; standalone they are kept in the state dir's `nodes/exec.json`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::api::{AllowedPattern, ExecEdit, ExecRecord};
use crate::crd::node_pairing::ExecPolicy;
use crate::util::state_dir::{StateDir, StateError};

pub const FILE: &str = "nodes/exec.json";
/// The longest pattern accepted.
pub const MAX_PATTERN: usize = 512;
/// As many patterns as a NodePairing's schema admits.
pub const MAX_PATTERNS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("add: `{pattern}` {why}")]
    Pattern { pattern: String, why: &'static str },
    #[error("remove: `{0}` is not on this node's allowlist")]
    NotListed(String),
    #[error("add: a node's allowlist holds at most {MAX_PATTERNS} patterns; remove some first")]
    TooMany,
}

/// Why `pattern` cannot be a pattern of the resolved program path, if it cannot.
pub fn check_pattern(pattern: &str) -> Result<(), &'static str> {
    if pattern.trim().is_empty() {
        return Err("is empty");
    }
    if pattern.len() > MAX_PATTERN {
        return Err("is longer than 512 characters");
    }
    if pattern.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if pattern != pattern.trim() {
        return Err("has spaces around it");
    }
    if !pattern.contains('/') {
        return Err(
            "has no `/`: a pattern matches the resolved path of a program, e.g. /usr/bin/uptime or ~/bin/*; a bare name never matches",
        );
    }
    Ok(())
}

/// `current` with `edit` applied: the policy fields it sets, then its removals and additions
/// (each pattern kept once, in the order added). Nothing changes when any part is invalid.
pub fn apply(current: &ExecPolicy, edit: &ExecEdit) -> Result<ExecPolicy, EditError> {
    let mut next = current.clone();
    next.security = edit.security.unwrap_or(next.security);
    next.ask = edit.ask.unwrap_or(next.ask);
    next.ask_fallback = edit.ask_fallback.unwrap_or(next.ask_fallback);
    for p in &edit.remove {
        let before = next.allowlist.len();
        next.allowlist.retain(|q| q != p);
        if next.allowlist.len() == before {
            return Err(EditError::NotListed(p.clone()));
        }
    }
    for p in &edit.add {
        check_pattern(p).map_err(|why| EditError::Pattern {
            pattern: p.clone(),
            why,
        })?;
        if !next.allowlist.contains(p) {
            next.allowlist.push(p.clone());
        }
    }
    if next.allowlist.len() > MAX_PATTERNS {
        return Err(EditError::TooMany);
    }
    Ok(next)
}

/// Each pattern of `allowlist` with its last use by `node_id` in `records` (the exec audit log,
/// oldest first).
pub fn with_last_use(
    allowlist: &[String],
    node_id: &str,
    records: &[ExecRecord],
) -> Vec<AllowedPattern> {
    allowlist
        .iter()
        .map(|pattern| {
            let last = records
                .iter()
                .rev()
                .find(|r| r.node_id == node_id && r.allowlist.contains(pattern));
            AllowedPattern {
                pattern: pattern.clone(),
                last_used: last.map(|r| r.ts),
                last_command: last.map(|r| r.command.clone()),
            }
        })
        .collect()
}

/// The settings of every node standalone, by node id; a node without an entry has the default.
pub struct LocalExec {
    state: StateDir,
    lock: Mutex<()>,
}

impl LocalExec {
    pub fn new(state: StateDir) -> Self {
        Self {
            state,
            lock: Mutex::new(()),
        }
    }

    /// Where they are kept, for the owner.
    pub fn source(&self) -> String {
        self.state.path().join(FILE).display().to_string()
    }

    fn all(&self) -> Result<BTreeMap<String, ExecPolicy>, StateError> {
        Ok(self.state.read(FILE)?.unwrap_or_default())
    }

    pub fn get(&self, node_id: &str) -> Result<ExecPolicy, StateError> {
        let _held = self.lock.lock().expect("exec settings lock");
        Ok(self.all()?.remove(node_id).unwrap_or_default())
    }

    /// Whether the node has settings of its own here.
    pub fn has(&self, node_id: &str) -> Result<bool, StateError> {
        let _held = self.lock.lock().expect("exec settings lock");
        Ok(self.all()?.contains_key(node_id))
    }

    /// Replaces a node's settings with what `change` makes of them, written before it returns.
    pub fn update<E: From<StateError>>(
        &self,
        node_id: &str,
        change: impl FnOnce(&ExecPolicy) -> Result<ExecPolicy, E>,
    ) -> Result<ExecPolicy, E> {
        let _held = self.lock.lock().expect("exec settings lock");
        let mut all = self.all()?;
        let next = change(&all.get(node_id).cloned().unwrap_or_default())?;
        all.insert(node_id.to_string(), next.clone());
        self.state.write(FILE, &all)?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::node_pairing::{ExecAsk, ExecSecurity};

    fn edit(add: &[&str], remove: &[&str]) -> ExecEdit {
        ExecEdit {
            add: add.iter().map(|s| s.to_string()).collect(),
            remove: remove.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn edits_add_once_remove_and_set_the_policy() {
        let start = ExecPolicy::default();
        let added = apply(
            &start,
            &edit(&["/usr/bin/id", "~/bin/*", "/usr/bin/id"], &[]),
        )
        .unwrap();
        assert_eq!(added.allowlist, ["/usr/bin/id", "~/bin/*"]);
        let removed = apply(&added, &edit(&[], &["/usr/bin/id"])).unwrap();
        assert_eq!(removed.allowlist, ["~/bin/*"]);
        let stricter = apply(
            &removed,
            &ExecEdit {
                ask: Some(ExecAsk::Always),
                ask_fallback: Some(ExecSecurity::Full),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (stricter.security, stricter.ask, stricter.ask_fallback),
            (ExecSecurity::Allowlist, ExecAsk::Always, ExecSecurity::Full)
        );
        assert_eq!(stricter.allowlist, ["~/bin/*"], "the list is kept");
    }

    #[test]
    fn bad_edits_name_the_pattern_and_change_nothing() {
        let start = ExecPolicy::default();
        for (bad, why) in [
            ("uptime", "bare name never matches"),
            ("", "is empty"),
            (" /usr/bin/id", "spaces"),
            ("/usr/bin/id\n/bin/sh", "control character"),
        ] {
            let e = apply(&start, &edit(&[bad], &[])).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATTERN));
        assert!(apply(&start, &edit(&[&long], &[])).is_err());
        let e = apply(&start, &edit(&[], &["/usr/bin/id"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "remove: `/usr/bin/id` is not on this node's allowlist"
        );
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("/bin/p{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(matches!(
            apply(&start, &edit(&refs, &[])),
            Err(EditError::TooMany)
        ));
    }

    #[test]
    fn last_use_is_the_newest_run_the_pattern_let_through_on_that_node() {
        let rec = |node: &str, command: &str, allowlist: &[&str], minute: u32| ExecRecord {
            ts: chrono::DateTime::parse_from_rfc3339(&format!("2026-11-29T10:{minute:02}:00Z"))
                .unwrap()
                .into(),
            node_id: node.into(),
            node: node.into(),
            command: command.into(),
            decision: "ran".into(),
            by: None,
            exit_code: Some(0),
            duration_ms: 1,
            output_bytes: 0,
            allowlist: allowlist.iter().map(|s| s.to_string()).collect(),
        };
        let records = [
            rec("a", "id -u", &["/usr/bin/id"], 1),
            rec("a", "id -g", &["/usr/bin/id"], 2),
            rec("b", "id -n", &["/usr/bin/id"], 3),
            rec("a", "uptime", &[], 4),
        ];
        let list = ["/usr/bin/id".to_string(), "/usr/bin/df".to_string()];
        let seen = with_last_use(&list, "a", &records);
        assert_eq!(seen[0].last_command.as_deref(), Some("id -g"));
        assert_eq!(
            seen[0].last_used.unwrap().to_rfc3339(),
            "2026-11-29T10:02:00+00:00"
        );
        assert_eq!(seen[1].last_used, None);
    }

    #[test]
    fn standalone_settings_are_kept_per_node_in_the_state_dir() {
        let dir = std::env::temp_dir().join(format!(
            "clawops-exec-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let local = LocalExec::new(StateDir::open(&dir).unwrap());
        assert_eq!(local.get("a").unwrap(), ExecPolicy::default());
        local
            .update("a", |cur| {
                Ok::<_, StateError>(apply(cur, &edit(&["/usr/bin/id"], &[])).unwrap())
            })
            .unwrap();
        let again = LocalExec::new(StateDir::open(&dir).unwrap());
        assert_eq!(again.get("a").unwrap().allowlist, ["/usr/bin/id"]);
        assert!(again.get("b").unwrap().allowlist.is_empty());
    }
}
