//! What the owner is told: an alert or its clearing, in English or Chinese.

use super::conditions::Active;

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Alert {
        object: String,
        active: Active,
    },
    Cleared {
        object: String,
        reason: String,
        gone: bool,
    },
}

impl Notice {
    pub fn text(&self, cjk: bool) -> String {
        match (self, cjk) {
            (Notice::Alert { object, active }, false) => format!(
                "🚨 {object}: {} — {}\n-> {}",
                active.reason, active.detail, active.action
            ),
            (Notice::Alert { object, active }, true) => format!(
                "🚨 告警 {object}：{} — {}\n-> {}",
                active.reason, active.detail, active.action
            ),
            (
                Notice::Cleared {
                    object,
                    reason,
                    gone,
                },
                false,
            ) => format!(
                "✅ {object}: {reason} cleared{}",
                if *gone { " (the object is gone)" } else { "" }
            ),
            (
                Notice::Cleared {
                    object,
                    reason,
                    gone,
                },
                true,
            ) => format!(
                "✅ 恢复 {object}：{reason} 已解除{}",
                if *gone { "（对象已删除）" } else { "" }
            ),
        }
    }
}
