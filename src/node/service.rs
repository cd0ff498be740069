//! The node as a systemd **user** service: `clawops-node.service` with the exact command line
//! and environment of `clawops node run` (the token in a 0600 env file, not in the unit), enabled
//! with `systemctl --user`; where systemd cannot be reached, the unit is written and the
//! commands to run are printed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const UNIT: &str = "clawops-node.service";
pub const ENV_FILE: &str = "node.env";

/// What the unit runs.
pub struct ServiceSpec {
    /// `clawops`, absolute.
    pub program: PathBuf,
    /// The arguments after it (`node run --gateway …`).
    pub args: Vec<String>,
    /// Variables the node needs to find programs as it did when installed (PATH).
    pub env: Vec<(String, String)>,
    /// The 0600 file that holds the gateway token, if one was given.
    pub env_file: Option<PathBuf>,
}

/// An argument as systemd reads it: quoted only when it has whitespace, a quote or a backslash
/// (Clawdbot's rule).
fn quote(arg: &str) -> String {
    if arg.is_empty()
        || arg
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        arg.to_string()
    }
}

/// The unit file.
pub fn unit(spec: &ServiceSpec) -> String {
    let mut exec = vec![quote(&spec.program.to_string_lossy())];
    exec.extend(spec.args.iter().map(|a| quote(a)));
    let mut out = format!(
        "[Unit]\nDescription=clawops node host (v{})\nAfter=network-online.target\nWants=network-online.target\n\n[Service]\nExecStart={}\nRestart=always\nRestartSec=5\nKillMode=process\n",
        env!("CARGO_PKG_VERSION"),
        exec.join(" ")
    );
    for (k, v) in &spec.env {
        out.push_str(&format!("Environment={}\n", quote(&format!("{k}={v}"))));
    }
    if let Some(f) = &spec.env_file {
        out.push_str(&format!(
            "EnvironmentFile={}\n",
            quote(&f.to_string_lossy())
        ));
    }
    out.push_str("\n[Install]\nWantedBy=default.target\n");
    out
}

/// `~/.config/systemd/user` (or under `$XDG_CONFIG_HOME`).
pub fn unit_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"))
        .join("systemd/user")
}

fn write_private(path: &Path, body: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(body.as_bytes())
}

/// `systemctl --user <args>`; None when systemd's user manager cannot be reached.
fn systemctl(args: &[&str]) -> Option<std::process::Output> {
    Command::new("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .ok()
        .filter(|o| {
            let err = String::from_utf8_lossy(&o.stderr);
            !(err.contains("Failed to connect to bus")
                || err.contains("not been booted with systemd"))
        })
}

/// Writes the token file (when a token is given) and the unit, then enables and starts it.
/// Returns what to tell the user.
pub fn install(
    spec: &ServiceSpec,
    token: Option<&str>,
    force: bool,
) -> anyhow::Result<Vec<String>> {
    let path = unit_dir().join(UNIT);
    if path.exists() && !force {
        anyhow::bail!(
            "{} exists; `clawops node uninstall` first, or pass --force to replace it",
            path.display()
        );
    }
    let mut said = Vec::new();
    if let (Some(file), Some(token)) = (&spec.env_file, token) {
        write_private(file, &format!("CLAWOPS_GATEWAY_TOKEN={token}\n"))?;
        said.push(format!(
            "wrote {} (0600): the gateway token",
            file.display()
        ));
    }
    write_private(&path, &unit(spec))?;
    said.push(format!("wrote {}", path.display()));
    let started = systemctl(&["daemon-reload"]).is_some_and(|o| o.status.success())
        && systemctl(&["enable", "--now", UNIT]).is_some_and(|o| o.status.success());
    if started {
        said.push(format!(
            "enabled and started {UNIT}; `clawops node status` shows how it is doing"
        ));
    } else {
        said.push(format!(
            "systemd's user manager is not reachable here; start it with: systemctl --user daemon-reload && systemctl --user enable --now {UNIT}"
        ));
    }
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        let linger = Command::new("loginctl")
            .args(["show-user", &user, "-p", "Linger"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if linger.as_deref() == Some("Linger=no") {
            said.push(format!(
                "lingering is off: the node stops when you log out; keep it running with `sudo loginctl enable-linger {user}`"
            ));
        }
    }
    Ok(said)
}

/// Stops and removes the unit and the token file.
pub fn uninstall(env_file: &Path) -> anyhow::Result<Vec<String>> {
    let path = unit_dir().join(UNIT);
    let mut said = Vec::new();
    if systemctl(&["disable", "--now", UNIT]).is_some_and(|o| o.status.success()) {
        said.push(format!("stopped and disabled {UNIT}"));
    }
    for f in [&path, &env_file.to_path_buf()] {
        match std::fs::remove_file(f) {
            Ok(()) => said.push(format!("removed {}", f.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let _ = systemctl(&["daemon-reload"]);
    if said.is_empty() {
        said.push(format!("{} is not installed", path.display()));
    }
    Ok(said)
}

/// Whether systemd runs the unit: `active`, `inactive`, `failed`…, or None without systemd.
pub fn active_state() -> Option<String> {
    systemctl(&["is-active", UNIT]).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_exact_command_and_keeps_the_token_out() {
        let spec = ServiceSpec {
            program: "/usr/local/bin/clawops".into(),
            args: vec![
                "node".into(),
                "run".into(),
                "--gateway".into(),
                "wss://shrimp.tailnet.ts.net/".into(),
                "--display-name".into(),
                "my desk".into(),
            ],
            env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
            env_file: Some("/home/me/.clawops/node/node.env".into()),
        };
        let u = unit(&spec);
        assert!(u.contains("ExecStart=/usr/local/bin/clawops node run --gateway wss://shrimp.tailnet.ts.net/ --display-name \"my desk\"\n"), "{u}");
        assert!(u.contains("Restart=always\nRestartSec=5\n"));
        assert!(u.contains("Environment=PATH=/usr/local/bin:/usr/bin:/bin\n"));
        assert!(u.contains("EnvironmentFile=/home/me/.clawops/node/node.env\n"));
        assert!(u.ends_with("[Install]\nWantedBy=default.target\n"));
        assert!(!u.contains("TOKEN"));
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quote("a\\b"), "\"a\\\\b\"");
        assert_eq!(quote(""), "\"\"");
    }
}
