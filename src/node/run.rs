//! `system.run` on the node: the command line is checked against the node's own policy (the
//! stricter of its file and what the gateway sent), approved or asked about, then run without
//! a shell of our own, with a time limit and a cap on what it prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::approvals::{self, AGENT};
use super::host_fs::MachineHost;
use crate::exec::{Ask, DenyReason, Policy, Security, Verdict, allowlist, analyze};
use crate::protocol::frames::{ErrorShape, codes};
use crate::protocol::invoke::{RunOutput, RunParams};
use crate::util::state_dir::StateDir;

/// What one stream may keep; the rest is read and dropped so the command never blocks on it.
pub const OUTPUT_CAP: usize = 100_000;
pub const TRUNCATED: &str = "\n... (truncated)";
/// The limit when the gateway gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Variables a caller may not set: they change what a program loads.
const BLOCKED_ENV: &[&str] = &[
    "NODE_OPTIONS",
    "PYTHONHOME",
    "PYTHONPATH",
    "PERL5LIB",
    "PERL5OPT",
    "RUBYOPT",
];

fn unavailable(message: impl Into<String>) -> ErrorShape {
    ErrorShape::new(codes::UNAVAILABLE, message)
}

/// What is checked for an argv: the script of `sh -c SCRIPT` (what will actually run), or the
/// argv itself. The gateway's `rawCommand` is only for display: checking it instead of what
/// runs would let a caller show one command and run another.
fn commands_of(argv: &[String]) -> Result<Vec<analyze::Words>, String> {
    let shell = argv.first().and_then(|a| a.rsplit('/').next());
    match (shell, argv.get(1).map(String::as_str), argv.get(2)) {
        (Some("sh" | "bash" | "dash" | "zsh"), Some("-c" | "-lc"), Some(script))
            if argv.len() == 3 =>
        {
            analyze::shell(script)
        }
        _ => analyze::argv(argv),
    }
}

/// Runs `params` if the policy allows it.
pub async fn system_run(state: &StateDir, params: RunParams) -> Result<RunOutput, ErrorShape> {
    if params.command.is_empty() {
        return Err(ErrorShape::new(codes::INVALID_REQUEST, "command required"));
    }
    let mut file = approvals::load(state).map_err(|e| unavailable(e.to_string()))?;
    let own = file.policy(AGENT);
    let policy = match params.policy {
        Some(gateway) => own.stricter(gateway),
        None => own,
    };
    let host = MachineHost::from_env();
    let cwd = params.cwd.as_deref().map(Path::new);
    let analysed = commands_of(&params.command);
    let check = analysed.as_ref().ok().map(|cmds| {
        allowlist::check(
            cmds,
            &file.allowlist(AGENT),
            &allowlist::default_safe_bins(),
            &host,
            cwd,
        )
    });
    let satisfied = check.as_ref().is_some_and(|c| c.satisfied);
    let decision = params.approval_decision.as_deref();
    let by_owner =
        matches!(decision, Some("allow-once" | "allow-always")) || params.approved == Some(true);
    let standing = if by_owner || satisfied {
        None
    } else {
        standing(&policy, &params.allowlist, &file, &analysed, &host, cwd)
    };
    let approved = by_owner || standing.is_some();
    match policy.verdict(satisfied, approved) {
        Verdict::Run => {}
        Verdict::Ask => {
            let why = match (&analysed, &check) {
                (Err(e), _) => e.clone(),
                (_, Some(c)) => c
                    .miss
                    .clone()
                    .unwrap_or_else(|| "the policy asks every time".into()),
                _ => String::new(),
            };
            return Err(unavailable(DenyReason::ApprovalRequired.message())
                .with_details(serde_json::json!({ "reason": why })));
        }
        Verdict::Deny(r) => return Err(unavailable(r.message())),
    }
    let line = params
        .raw_command
        .clone()
        .unwrap_or_else(|| params.command.join(" "));
    let mut allowlisted = Vec::new();
    if let Some(c) = &check {
        let now = chrono::Utc::now().timestamp_millis();
        let mut changed = false;
        if decision == Some("allow-always") && policy.security == Security::Allowlist {
            for path in c.resolved.iter().flatten() {
                let pattern = path.to_string_lossy().into_owned();
                if file.allow(AGENT, &pattern) {
                    changed = true;
                    allowlisted.push(pattern);
                }
            }
        }
        let list = file.allowlist(AGENT);
        let used: Vec<String> = c
            .matched
            .iter()
            .filter_map(|i| list.get(*i))
            .map(|e| e.pattern.clone())
            .collect();
        if !used.is_empty() {
            let first = c.resolved.first().cloned().flatten();
            file.record_use(
                AGENT,
                &used,
                &line,
                first.as_deref().and_then(Path::to_str),
                now,
            );
            changed = true;
        }
        if changed && let Err(e) = state.write(approvals::FILE, &file) {
            tracing::warn!(error = %e, "could not record the allowlist use");
        }
    }
    let mut out = spawn(&params, cwd).await;
    out.allowlisted = allowlisted;
    out.standing = standing.unwrap_or_default();
    Ok(out)
}

/// The gateway's patterns that answer the question this command would raise, when the owner's
/// standing approvals at the gateway do: only when the policy would ask on this miss
/// (allowlist, `on-miss`), never when it would deny, and every simple command must match this
/// node's allowlist, the gateway's patterns or a safe bin.
fn standing(
    policy: &Policy,
    patterns: &[String],
    file: &approvals::ApprovalsFile,
    analysed: &Result<Vec<analyze::Words>, String>,
    host: &MachineHost,
    cwd: Option<&Path>,
) -> Option<Vec<String>> {
    let (Ok(cmds), false) = (analysed, patterns.is_empty()) else {
        return None;
    };
    if policy.security != Security::Allowlist || policy.ask != Ask::OnMiss {
        return None;
    }
    let mut both = file.allowlist(AGENT);
    let own = both.len();
    both.extend(patterns.iter().map(allowlist::AllowEntry::new));
    let check = allowlist::check(cmds, &both, &allowlist::default_safe_bins(), host, cwd);
    check.satisfied.then(|| {
        check
            .matched
            .iter()
            .filter_map(|i| i.checked_sub(own).and_then(|g| patterns.get(g)).cloned())
            .collect()
    })
}

fn env_for(overrides: Option<&BTreeMap<String, String>>) -> Option<BTreeMap<String, String>> {
    let overrides = overrides?;
    let current_path = std::env::var("PATH").unwrap_or_default();
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    for (k, v) in overrides {
        let upper = k.to_ascii_uppercase();
        let blocked = BLOCKED_ENV.contains(&upper.as_str())
            || upper.starts_with("LD_")
            || upper.starts_with("DYLD_")
            // PATH may only gain directories in front, never lose the node's own.
            || (upper == "PATH" && *v != current_path && !v.ends_with(&format!(":{current_path}")));
        if !blocked {
            env.insert(k.clone(), v.clone());
        }
    }
    Some(env)
}

async fn read_capped(mut stream: impl AsyncRead + Unpin) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

/// The argv that runs: a login shell (`sh -lc`, as gateways send it) becomes a plain one, since
/// a login shell reads a PATH from /etc/profile that the allowlist check never saw — the check
/// would pass one `docker` and the shell run another.
fn runnable(argv: &[String]) -> Vec<String> {
    let shell = argv.first().and_then(|a| a.rsplit('/').next());
    let mut out = argv.to_vec();
    if matches!(shell, Some("sh" | "bash" | "dash" | "zsh")) && argv.len() == 3 && argv[1] == "-lc"
    {
        out[1] = "-c".into();
    }
    out
}

async fn spawn(params: &RunParams, cwd: Option<&Path>) -> RunOutput {
    let argv = runnable(&params.command);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd.filter(|d| !d.as_os_str().is_empty()) {
        cmd.current_dir(dir);
    }
    if let Some(env) = env_for(params.env.as_ref()) {
        cmd.env_clear().envs(env);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return RunOutput {
                exit_code: None,
                timed_out: false,
                success: false,
                stdout: String::new(),
                stderr: String::new(),
                error: Some(format!("{}: {e}", params.command[0])),
                ..Default::default()
            };
        }
    };
    let out = read_capped(child.stdout.take().expect("piped"));
    let err = read_capped(child.stderr.take().expect("piped"));
    let limit = params
        .timeout_ms
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    let run = async {
        let (out, err) = tokio::join!(out, err);
        (child.wait().await, out, err)
    };
    let (status, (out, out_cut), (err, err_cut), timed_out) =
        match tokio::time::timeout(limit, run).await {
            Ok((status, out, err)) => (status.ok(), out, err, false),
            Err(_) => ((None), (Vec::new(), false), (Vec::new(), false), true),
        };
    let mut stdout = String::from_utf8_lossy(&out).into_owned();
    let mut stderr = String::from_utf8_lossy(&err).into_owned();
    if out_cut {
        stdout.push_str(TRUNCATED);
    }
    if err_cut {
        stderr.push_str(TRUNCATED);
    }
    if timed_out {
        stderr.push_str(&format!("\ntimed out after {} s; killed", limit.as_secs()));
    }
    let exit_code = status.and_then(|s| s.code());
    RunOutput {
        exit_code,
        timed_out,
        success: exit_code == Some(0) && !timed_out,
        stdout,
        stderr,
        error: None,
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
