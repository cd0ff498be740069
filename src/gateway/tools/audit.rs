//! The tool audit log: one JSON line per tool call in `tools/audit.jsonl` (0600) — when, which
//! chat's turn, the tool, its arguments with anything secret-looking redacted, how long it
//! took, how big its result was and how it ended; never the result itself.

use serde_json::Value;

use crate::util::jsonl::JsonLog;

pub const FILE: &str = "tools/audit.jsonl";

/// Arguments longer than this are cut in the log.
const ARGS_CAP: usize = 1000;

pub use crate::api::ToolRecord;

pub type ToolAudit = JsonLog<ToolRecord>;

/// Keys whose values are never logged.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api_key",
        "credential",
        "authorization",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Words after which a command line carries a secret.
const SECRET_MARKERS: &[&str] = &[
    "bearer ",
    "token=",
    "password=",
    "passwd=",
    "secret=",
    "basic ",
    "--token ",
    "--password ",
];

/// `text` with what follows a secret marker (up to the next space or quote) replaced.
pub fn redact_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let hit = SECRET_MARKERS
            .iter()
            .filter_map(|m| lower[at..].find(m).map(|i| (at + i, m.len())))
            .min_by_key(|(i, _)| *i);
        let Some((start, len)) = hit else {
            out.push_str(&text[at..]);
            break;
        };
        let value = start + len;
        let end = text[value..]
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .map_or(text.len(), |i| value + i);
        out.push_str(&text[at..value]);
        if end > value {
            out.push_str("[redacted]");
        }
        at = end;
    }
    out
}

/// The arguments as they go to the log.
pub fn redact(args: &Value) -> String {
    fn walk(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = if secret_key(k) {
                            Value::String("[redacted]".into())
                        } else {
                            walk(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(walk).collect()),
            Value::String(s) => Value::String(redact_text(s)),
            other => other.clone(),
        }
    }
    let mut text = walk(args).to_string();
    if text.len() > ARGS_CAP {
        let mut cut = ARGS_CAP;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_in_arguments_never_reach_the_log() {
        let args = json!({
            "node": "desk",
            "command": "curl -H 'Authorization: Bearer sk-123' https://x/?token=abc && mysql --password hunter2",
            "apiToken": "xyz",
            "nested": [{"password": "p"}],
        });
        let logged = redact(&args);
        for secret in ["sk-123", "abc", "hunter2", "xyz", "\"p\""] {
            assert!(!logged.contains(secret), "{secret} in {logged}");
        }
        assert!(
            logged.contains("desk") && logged.contains("curl -H"),
            "{logged}"
        );
        assert_eq!(redact_text("kubectl get pods"), "kubectl get pods");
        assert_eq!(redact_text("x token="), "x token=");
    }

    #[test]
    fn long_arguments_are_cut_on_a_character_boundary() {
        let logged = redact(&json!({"command": "日".repeat(2000)}));
        assert!(logged.len() <= ARGS_CAP + 3 && logged.ends_with('…'));
    }
}
