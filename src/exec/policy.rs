//! Exec policy (reference §5.6): `security` deny | allowlist | full, `ask` off | on-miss |
//! always, `askFallback`; the stricter of two policies; and the verdict for one command.

use serde::{Deserialize, Serialize};

/// What may run at all, from strictest to loosest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Deny,
    Allowlist,
    Full,
}

/// When the owner is asked, from least to most often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ask {
    Off,
    OnMiss,
    Always,
}

/// A node's exec policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub security: Security,
    pub ask: Ask,
    /// What happens when nobody answers an approval in time.
    pub ask_fallback: Security,
}

impl Default for Policy {
    /// Clawdbot's defaults for a node: allowlist, ask on a miss, deny when nobody answers.
    fn default() -> Self {
        Self {
            security: Security::Allowlist,
            ask: Ask::OnMiss,
            ask_fallback: Security::Deny,
        }
    }
}

impl Policy {
    /// The stricter of two policies: the lower security, the more frequent ask, the lower
    /// fallback. A gateway can tighten what a machine's owner allowed, never loosen it.
    pub fn stricter(self, other: Policy) -> Policy {
        Policy {
            security: self.security.min(other.security),
            ask: self.ask.max(other.ask),
            ask_fallback: self.ask_fallback.min(other.ask_fallback),
        }
    }

    /// The verdict for a command whose allowlist check gave `satisfied` (false when the command
    /// could not be analysed), given whether the owner already approved it.
    pub fn verdict(&self, satisfied: bool, approved: bool) -> Verdict {
        if self.security == Security::Deny {
            return Verdict::Deny(DenyReason::SecurityDeny);
        }
        let satisfied = self.security == Security::Allowlist && satisfied;
        let needs_ask = self.ask == Ask::Always
            || (self.ask == Ask::OnMiss && self.security == Security::Allowlist && !satisfied);
        if needs_ask && !approved {
            return Verdict::Ask;
        }
        if self.security == Security::Allowlist && !satisfied && !approved {
            return Verdict::Deny(DenyReason::AllowlistMiss);
        }
        Verdict::Run
    }
}

/// What to do with one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Run,
    /// The owner must approve it first.
    Ask,
    Deny(DenyReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    SecurityDeny,
    AllowlistMiss,
    ApprovalRequired,
    Denied,
    TimedOut,
}

impl DenyReason {
    /// The error message a node answers with, as Clawdbot words it.
    pub fn message(self) -> &'static str {
        match self {
            DenyReason::SecurityDeny => "SYSTEM_RUN_DISABLED: security=deny",
            DenyReason::AllowlistMiss => "SYSTEM_RUN_DENIED: allowlist miss",
            DenyReason::ApprovalRequired => "SYSTEM_RUN_DENIED: approval required",
            DenyReason::Denied => "SYSTEM_RUN_DENIED: denied by the owner",
            DenyReason::TimedOut => "SYSTEM_RUN_DENIED: approval timed out",
        }
    }

    /// The short reason of the audit log and `exec.denied`.
    pub fn reason(self) -> &'static str {
        match self {
            DenyReason::SecurityDeny => "security=deny",
            DenyReason::AllowlistMiss => "allowlist-miss",
            DenyReason::ApprovalRequired => "approval-required",
            DenyReason::Denied => "user-denied",
            DenyReason::TimedOut => "approval-timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(security: Security, ask: Ask) -> Policy {
        Policy {
            security,
            ask,
            ask_fallback: Security::Deny,
        }
    }

    #[test]
    fn the_stricter_policy_wins_each_field() {
        let owner = Policy {
            security: Security::Allowlist,
            ask: Ask::Off,
            ask_fallback: Security::Allowlist,
        };
        let gateway = Policy {
            security: Security::Full,
            ask: Ask::Always,
            ask_fallback: Security::Full,
        };
        let both = owner.stricter(gateway);
        assert_eq!(
            both.security,
            Security::Allowlist,
            "a gateway cannot loosen"
        );
        assert_eq!(both.ask, Ask::Always, "but it can ask more");
        assert_eq!(both.ask_fallback, Security::Allowlist);
        assert_eq!(both, gateway.stricter(owner), "order does not matter");
    }

    #[test]
    fn verdicts_follow_clawdbots_rules() {
        use Verdict::{Deny, Run};
        let allow = p(Security::Allowlist, Ask::OnMiss);
        assert_eq!(allow.verdict(true, false), Run);
        assert_eq!(allow.verdict(false, false), Verdict::Ask);
        assert_eq!(allow.verdict(false, true), Run, "approved once");
        let strict = p(Security::Allowlist, Ask::Off);
        assert_eq!(
            strict.verdict(false, false),
            Deny(DenyReason::AllowlistMiss)
        );
        assert_eq!(p(Security::Full, Ask::OnMiss).verdict(false, false), Run);
        assert_eq!(
            p(Security::Full, Ask::Always).verdict(true, false),
            Verdict::Ask
        );
        assert_eq!(
            p(Security::Deny, Ask::Off).verdict(true, true),
            Deny(DenyReason::SecurityDeny),
            "deny is final, approved or not"
        );
    }

    #[test]
    fn policy_json_uses_clawdbots_words() {
        let text = serde_json::to_string(&Policy::default()).unwrap();
        assert_eq!(
            text,
            r#"{"security":"allowlist","ask":"on-miss","askFallback":"deny"}"#
        );
    }
}
