//! Reading a Clawdbot install: the JSON5 config, the workspace's IDENTITY.md, an `.env` file,
//! the cron jobs, the Telegram pairing stores, the paired devices and the exec approvals. Every
//! file that cannot be read or parsed is an error naming it; a file that is simply not there is
//! `None` (an install need not have crons or nodes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error(
        "{path}: not valid JSON5 ({message}); Clawdbot would not start with it either: fix it and import again"
    )]
    Parse { path: String, message: String },
    #[error("no Clawdbot config in {dir}: expected clawdbot.json there (or pass --config FILE)")]
    NoConfig { dir: String },
    #[error(
        "the workspace {path} does not exist: pass --workspace DIR (the directory with IDENTITY.md), or set agents.defaults.workspace"
    )]
    NoWorkspace { path: String },
    #[error("{path}: line {line}: {message}")]
    Env {
        path: String,
        line: usize,
        message: String,
    },
}

/// What an install holds, as read.
#[derive(Debug, Default)]
pub struct Install {
    pub config_path: String,
    pub config: Value,
    /// IDENTITY.md of the workspace, with its path.
    pub identity: Option<(String, String)>,
    /// The env file's variables (never printed).
    pub env: BTreeMap<String, String>,
    pub env_path: Option<String>,
    /// `cron/jobs.json`.
    pub jobs: Option<(String, Value)>,
    /// `credentials/<channel>-pairing.json` and `-allowFrom.json`, by channel.
    pub pairing: BTreeMap<String, (Option<Value>, Option<Value>)>,
    /// `devices/paired.json`.
    pub devices: Option<(String, Value)>,
    /// `exec-approvals.json`.
    pub approvals: Option<(String, Value)>,
}

/// Where to read from.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The state dir (`~/.clawdbot`).
    pub from: PathBuf,
    pub config: Option<PathBuf>,
    pub workspace: Option<PathBuf>,
    pub env: Option<PathBuf>,
    /// For `~` in paths from the config.
    pub home: Option<PathBuf>,
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

fn read_optional(path: &Path) -> Result<Option<String>, SourceError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SourceError::Read {
            path: show(path),
            message: e.to_string(),
        }),
    }
}

/// Parses JSON5 (plain JSON is JSON5 too).
pub fn json5(path: &str, text: &str) -> Result<Value, SourceError> {
    json5::from_str(text).map_err(|e| SourceError::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

fn json_file(path: &Path) -> Result<Option<(String, Value)>, SourceError> {
    read_optional(path)?
        .map(|t| json5(&show(path), &t).map(|v| (show(path), v)))
        .transpose()
}

/// `KEY=VALUE` lines as Docker Compose and Clawdbot read them: `#` comments, an optional
/// `export `, values optionally in single or double quotes.
pub fn parse_env(path: &str, text: &str) -> Result<BTreeMap<String, String>, SourceError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(SourceError::Env {
                path: path.into(),
                line: i + 1,
                message: "expected KEY=VALUE".into(),
            });
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SourceError::Env {
                path: path.into(),
                line: i + 1,
                message: format!("`{key}` is not a variable name"),
            });
        }
        let value = value.trim();
        let value = match value.as_bytes() {
            [q @ (b'"' | b'\''), .., last] if last == q && value.len() >= 2 => {
                value[1..value.len() - 1].to_string()
            }
            // A comment after an unquoted value.
            _ => value
                .split_once(" #")
                .map_or(value, |(v, _)| v)
                .trim()
                .to_string(),
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// `~/…` against `home`.
pub fn expand(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads everything an import maps.
pub fn read(paths: &Paths) -> Result<Install, SourceError> {
    let config_path = paths
        .config
        .clone()
        .unwrap_or_else(|| paths.from.join("clawdbot.json"));
    let Some(text) = read_optional(&config_path)? else {
        return Err(match &paths.config {
            Some(p) => SourceError::Read {
                path: show(p),
                message: "no such file".into(),
            },
            None => SourceError::NoConfig {
                dir: show(&paths.from),
            },
        });
    };
    let config = json5(&show(&config_path), &text)?;
    let mut install = Install {
        config_path: show(&config_path),
        config,
        ..Default::default()
    };
    if let Some(env) = &paths.env {
        let text = read_optional(env)?.ok_or_else(|| SourceError::Read {
            path: show(env),
            message: "no such file".into(),
        })?;
        install.env = parse_env(&show(env), &text)?;
        install.env_path = Some(show(env));
    }
    // The workspace: as given, else the config's, else Clawdbot's default.
    let configured = install
        .config
        .pointer("/agents/defaults/workspace")
        .and_then(Value::as_str)
        .map(|w| expand(w, paths.home.as_deref()));
    let workspace = paths
        .workspace
        .clone()
        .or(configured)
        .or_else(|| paths.home.as_ref().map(|h| h.join("clawd")));
    if let Some(ws) = workspace {
        if !ws.is_dir() {
            // Named explicitly (or in the config) and missing: the persona would be lost.
            if paths.workspace.is_some()
                || install
                    .config
                    .pointer("/agents/defaults/workspace")
                    .is_some()
            {
                return Err(SourceError::NoWorkspace { path: show(&ws) });
            }
        } else {
            let file = ws.join("IDENTITY.md");
            install.identity = read_optional(&file)?.map(|t| (show(&file), t));
        }
    }
    install.jobs = json_file(&paths.from.join("cron/jobs.json"))?;
    let credentials = paths.from.join("credentials");
    if let Ok(entries) = std::fs::read_dir(&credentials) {
        let mut channels: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| {
                n.strip_suffix("-pairing.json")
                    .or_else(|| n.strip_suffix("-allowFrom.json"))
                    .map(String::from)
            })
            .collect();
        channels.sort();
        channels.dedup();
        for ch in channels {
            let pending = json_file(&credentials.join(format!("{ch}-pairing.json")))?;
            let allowed = json_file(&credentials.join(format!("{ch}-allowFrom.json")))?;
            install
                .pairing
                .insert(ch, (pending.map(|p| p.1), allowed.map(|a| a.1)));
        }
    }
    install.devices = json_file(&paths.from.join("devices/paired.json"))?;
    install.approvals = json_file(&paths.from.join("exec-approvals.json"))?;
    Ok(install)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_as_compose_reads_them() {
        let env = parse_env(
            ".env",
            "# keys\nexport TELEGRAM_BOT_TOKEN=\"123:abc\"\nZAI_API_KEY='k.s'\nCLAWDBOT_GATEWAY_TOKEN=t0k # note\n\nEMPTY=\n",
        )
        .unwrap();
        assert_eq!(env["TELEGRAM_BOT_TOKEN"], "123:abc");
        assert_eq!(env["ZAI_API_KEY"], "k.s");
        assert_eq!(env["CLAWDBOT_GATEWAY_TOKEN"], "t0k");
        assert_eq!(env["EMPTY"], "");
        let err = parse_env(".env", "OK=1\nnot a line\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, ".env: line 2: expected KEY=VALUE");
        let err = parse_env(".env", "BAD-NAME=1\n").unwrap_err().to_string();
        assert!(err.contains("`BAD-NAME` is not a variable name"), "{err}");
    }

    #[test]
    fn json5_is_read_and_a_broken_file_is_named() {
        let v = json5("c.json", "{\n // a comment\n gateway: { port: 18789, },\n}").unwrap();
        assert_eq!(v["gateway"]["port"], 18789);
        let err = json5("c.json", "{ gateway: ").unwrap_err().to_string();
        assert!(err.starts_with("c.json: not valid JSON5"), "{err}");
    }
}
