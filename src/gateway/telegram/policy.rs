//! Who may talk to the bot: `dmPolicy` for private chats, `groupPolicy` and `groups` for
//! groups, `allowFrom` plus the senders approved through pairing. A pure decision.

use crate::crd::channel::{DmPolicy, GroupPolicy};
use crate::plan::gateway_config::TelegramConfig;

/// A message as the policy sees it.
#[derive(Clone, Debug)]
pub struct Incoming<'a> {
    pub chat_id: i64,
    pub private: bool,
    pub sender_id: Option<u64>,
    pub sender_username: Option<&'a str>,
    /// The bot is @mentioned, or the message replies to the bot.
    pub addressed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// Unknown sender under `dmPolicy: pairing`.
    Pair,
    /// Dropped, with why (logged at debug).
    Ignore(&'static str),
}

/// Whether `list` admits the sender: `*`, the numeric id, or `@username` (any case).
pub fn listed(list: &[String], id: Option<u64>, username: Option<&str>) -> bool {
    list.iter().any(|e| {
        e == "*"
            || id.is_some_and(|id| e == &id.to_string())
            || username.is_some_and(|u| {
                e.strip_prefix('@')
                    .is_some_and(|e| e.eq_ignore_ascii_case(u))
            })
    })
}

pub fn decide(cfg: &TelegramConfig, m: &Incoming<'_>, paired: bool) -> Verdict {
    if m.private {
        let allowed = paired || listed(&cfg.allow_from, m.sender_id, m.sender_username);
        return match cfg.dm_policy {
            DmPolicy::Disabled => Verdict::Ignore("dmPolicy disabled"),
            DmPolicy::Open if listed(&cfg.allow_from, None, None) || allowed => Verdict::Answer,
            DmPolicy::Open => Verdict::Ignore("dmPolicy open without \"*\" in allowFrom"),
            DmPolicy::Allowlist if allowed => Verdict::Answer,
            DmPolicy::Allowlist => Verdict::Ignore("sender not in allowFrom"),
            DmPolicy::Pairing if allowed => Verdict::Answer,
            DmPolicy::Pairing => Verdict::Pair,
        };
    }
    let group = cfg
        .groups
        .get(&m.chat_id.to_string())
        .or_else(|| cfg.groups.get("*"));
    match (cfg.group_policy, group) {
        (GroupPolicy::Disabled, _) => Verdict::Ignore("groupPolicy disabled"),
        (GroupPolicy::Allowlist, None) => Verdict::Ignore("group not in groups"),
        (_, Some(g))
            if !g.allow_from.is_empty()
                && !listed(&g.allow_from, m.sender_id, m.sender_username) =>
        {
            Verdict::Ignore("sender not in the group's allowFrom")
        }
        // Without settings, an open group answers only when addressed, like requireMention.
        (_, g) if g.is_none_or(|g| g.require_mention) && !m.addressed => {
            Verdict::Ignore("not mentioned")
        }
        _ => Verdict::Answer,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::crd::channel::TelegramGroup;

    fn cfg(dm: DmPolicy, group: GroupPolicy, allow: &[&str]) -> TelegramConfig {
        TelegramConfig {
            bot_token_env: "T".into(),
            dm_policy: dm,
            group_policy: group,
            allow_from: allow.iter().map(|s| s.to_string()).collect(),
            groups: BTreeMap::new(),
            api_url: None,
        }
    }

    fn dm(id: u64, user: &str) -> Incoming<'_> {
        Incoming {
            chat_id: id as i64,
            private: true,
            sender_id: Some(id),
            sender_username: Some(user),
            addressed: false,
        }
    }

    fn group(chat: i64, addressed: bool) -> Incoming<'static> {
        Incoming {
            chat_id: chat,
            private: false,
            sender_id: Some(7),
            sender_username: Some("bob"),
            addressed,
        }
    }

    #[test]
    fn dm_policies() {
        let pairing = cfg(DmPolicy::Pairing, GroupPolicy::Disabled, &["@Alice"]);
        assert_eq!(
            decide(&pairing, &dm(1, "alice"), false),
            Verdict::Answer,
            "@username, any case"
        );
        assert_eq!(decide(&pairing, &dm(2, "mallory"), false), Verdict::Pair);
        assert_eq!(
            decide(&pairing, &dm(2, "mallory"), true),
            Verdict::Answer,
            "approved through pairing"
        );
        let allow = cfg(DmPolicy::Allowlist, GroupPolicy::Disabled, &["2"]);
        assert_eq!(decide(&allow, &dm(2, "x"), false), Verdict::Answer);
        assert!(matches!(
            decide(&allow, &dm(3, "x"), false),
            Verdict::Ignore(_)
        ));
        assert_eq!(
            decide(
                &cfg(DmPolicy::Open, GroupPolicy::Disabled, &["*"]),
                &dm(9, "x"),
                false
            ),
            Verdict::Answer
        );
        assert!(matches!(
            decide(
                &cfg(DmPolicy::Disabled, GroupPolicy::Disabled, &["*"]),
                &dm(9, "x"),
                true
            ),
            Verdict::Ignore(_)
        ));
    }

    #[test]
    fn group_policies() {
        let mut c = cfg(DmPolicy::Pairing, GroupPolicy::Disabled, &[]);
        assert_eq!(
            decide(&c, &group(-100, true), false),
            Verdict::Ignore("groupPolicy disabled")
        );
        c.group_policy = GroupPolicy::Allowlist;
        assert_eq!(
            decide(&c, &group(-100, true), false),
            Verdict::Ignore("group not in groups")
        );
        c.groups.insert(
            "-100".into(),
            TelegramGroup {
                require_mention: true,
                allow_from: vec![],
            },
        );
        assert_eq!(
            decide(&c, &group(-100, false), false),
            Verdict::Ignore("not mentioned")
        );
        assert_eq!(decide(&c, &group(-100, true), false), Verdict::Answer);
        c.groups.insert(
            "-100".into(),
            TelegramGroup {
                require_mention: false,
                allow_from: vec!["@carol".into()],
            },
        );
        assert!(
            matches!(decide(&c, &group(-100, false), false), Verdict::Ignore(_)),
            "bob is not carol"
        );
        c.group_policy = GroupPolicy::Open;
        c.groups.clear();
        assert_eq!(decide(&c, &group(-5, true), false), Verdict::Answer);
    }
}
