//! Patrols: facts about a cluster or a host, turned into findings that each carry a suggested
//! action, and the plain-text report the agent turn reads (and the chat gets verbatim when the
//! model cannot answer).

pub mod certs;
pub mod cluster;
pub mod host;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::crd::cron::{PatrolCheck, PatrolSpec, PatrolThresholds};

/// How urgent a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    Warning,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }
}

/// One thing that needs the owner's attention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub check: PatrolCheck,
    /// What it is about, e.g. `node worker-2` or `pod media/jellyfin-7d9f`.
    pub subject: String,
    /// What is wrong, in one line.
    pub problem: String,
    /// What to do or run to look closer, e.g. `kubectl describe node worker-2`.
    pub action: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        check: PatrolCheck,
        subject: impl Into<String>,
        problem: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            check,
            subject: subject.into(),
            problem: problem.into(),
            action: action.into(),
        }
    }
}

/// What one collector saw: summary facts, findings, and what it could not check and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Part {
    pub facts: Vec<String>,
    pub findings: Vec<Finding>,
    pub skipped: Vec<String>,
}

impl Part {
    pub fn extend(&mut self, other: Part) {
        self.facts.extend(other.facts);
        self.findings.extend(other.findings);
        self.skipped.extend(other.skipped);
    }
}

/// A whole patrol.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `cluster` or `host <name>`.
    pub scope: String,
    pub at: DateTime<Utc>,
    pub window: String,
    pub part: Part,
}

/// Findings listed per check in the text; the rest are counted, so a cluster in trouble still
/// gives a report a chat (and a model) can take.
pub const MAX_LISTED_PER_CHECK: usize = 15;

impl Report {
    pub fn new(scope: impl Into<String>, at: DateTime<Utc>, window: &str, mut part: Part) -> Self {
        part.findings.sort_by_key(|f| (f.severity, f.check));
        Self {
            scope: scope.into(),
            at,
            window: window.to_string(),
            part,
        }
    }

    pub fn all_clear(&self) -> bool {
        self.part.findings.is_empty()
    }

    fn count(&self, severity: Severity) -> usize {
        self.part
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// One line for the Cron status and the run record.
    pub fn summary(&self) -> String {
        if self.all_clear() {
            return format!("all clear ({})", self.scope);
        }
        format!(
            "{} critical, {} warning(s) ({})",
            self.count(Severity::Critical),
            self.count(Severity::Warning),
            self.scope
        )
    }

    /// The report as plain text: header, facts, numbered findings with their actions, and the
    /// checks that could not run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Patrol of the {} at {} (window {})",
            self.scope,
            self.at.format("%Y-%m-%d %H:%M UTC"),
            self.window
        );
        if !self.part.facts.is_empty() {
            out.push_str("\nFacts:\n");
            for f in &self.part.facts {
                let _ = writeln!(out, "- {f}");
            }
        }
        if self.all_clear() {
            out.push_str("\nAll clear: no findings.\n");
        } else {
            let _ = writeln!(out, "\nFindings: {}", self.summary());
            let mut n = 0;
            let mut per_check: std::collections::BTreeMap<PatrolCheck, usize> = Default::default();
            let mut hidden: std::collections::BTreeMap<PatrolCheck, usize> = Default::default();
            for f in &self.part.findings {
                let listed = per_check.entry(f.check).or_default();
                if *listed >= MAX_LISTED_PER_CHECK {
                    *hidden.entry(f.check).or_default() += 1;
                    continue;
                }
                *listed += 1;
                n += 1;
                let _ = writeln!(
                    out,
                    "{n}. [{}] {}: {}\n   -> {}",
                    f.severity.label(),
                    f.subject,
                    f.problem,
                    f.action
                );
            }
            for (check, more) in hidden {
                let _ = writeln!(out, "   … and {more} more {} finding(s)", check_name(check));
            }
        }
        if !self.part.skipped.is_empty() {
            out.push_str("\nNot checked:\n");
            for s in &self.part.skipped {
                let _ = writeln!(out, "- {s}");
            }
        }
        out
    }
}

pub fn check_name(check: PatrolCheck) -> &'static str {
    match check {
        PatrolCheck::Nodes => "nodes",
        PatrolCheck::Workloads => "workloads",
        PatrolCheck::Storage => "storage",
        PatrolCheck::Events => "events",
        PatrolCheck::Certificates => "certificates",
        PatrolCheck::Gateway => "gateway",
        PatrolCheck::Host => "host",
    }
}

/// Whether `spec` asks for `check` (an empty list means every check).
pub fn wants(spec: &PatrolSpec, check: PatrolCheck) -> bool {
    spec.checks.is_empty() || spec.checks.contains(&check)
}

/// The window of a patrol in seconds: at most a year (the CRD allows 4 digits), 12 h when it
/// does not parse.
pub fn window_secs(t: &PatrolThresholds) -> i64 {
    crate::crd::common::parse_duration(&t.window).map_or(12 * 3600, |s| s.min(366 * 86400) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity, check: PatrolCheck, subject: &str) -> Finding {
        Finding::new(
            severity,
            check,
            subject,
            "broken",
            format!("look at {subject}"),
        )
    }

    #[test]
    fn report_lists_critical_first_with_actions() {
        let part = Part {
            facts: vec!["nodes: 2 of 3 Ready".into()],
            findings: vec![
                finding(Severity::Warning, PatrolCheck::Storage, "pvc a/b"),
                finding(Severity::Critical, PatrolCheck::Nodes, "node n2"),
            ],
            skipped: vec!["certificates: cert-manager is not installed".into()],
        };
        let r = Report::new("cluster", Utc::now(), "12h", part);
        let text = r.render();
        let crit = text.find("1. [critical] node n2: broken").expect(&text);
        let warn = text.find("2. [warning] pvc a/b").expect(&text);
        assert!(crit < warn);
        assert!(text.contains("-> look at node n2"), "{text}");
        assert!(text.contains("nodes: 2 of 3 Ready"));
        assert!(text.contains("Not checked:\n- certificates"));
        assert_eq!(r.summary(), "1 critical, 1 warning(s) (cluster)");
        assert!(!r.all_clear());
    }

    #[test]
    fn healthy_report_is_a_short_all_clear() {
        let r = Report::new("cluster", Utc::now(), "12h", Part::default());
        assert!(r.all_clear());
        assert!(r.render().contains("All clear"));
        assert_eq!(r.summary(), "all clear (cluster)");
    }

    #[test]
    fn many_findings_are_counted_not_listed() {
        let findings = (0..40)
            .map(|i| {
                finding(
                    Severity::Warning,
                    PatrolCheck::Workloads,
                    &format!("pod p{i}"),
                )
            })
            .collect();
        let r = Report::new(
            "cluster",
            Utc::now(),
            "12h",
            Part {
                findings,
                ..Default::default()
            },
        );
        let text = r.render();
        assert_eq!(text.matches("[warning]").count(), MAX_LISTED_PER_CHECK);
        assert!(
            text.contains("… and 25 more workloads finding(s)"),
            "{text}"
        );
    }

    #[test]
    fn empty_check_list_means_all() {
        let mut spec = PatrolSpec::default();
        assert!(wants(&spec, PatrolCheck::Host));
        spec.checks = vec![PatrolCheck::Nodes];
        assert!(wants(&spec, PatrolCheck::Nodes));
        assert!(!wants(&spec, PatrolCheck::Events));
    }
}
