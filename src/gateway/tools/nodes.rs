//! Node tools: the paired machines with their state, a command run on one through its exec
//! policy and the owner's approval (asked in the chat the question came from), and a node's
//! system facts through a fixed set of read-only commands that go through the same policy.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::ToolError;
use super::args::Args;
use crate::gateway::Gateway;
use crate::gateway::assistant::model::ToolDef;
use crate::gateway::nodes::run::{self, RunError};
use crate::gateway::prompts::Chat;
use crate::protocol::invoke::RunOutput;

pub const NODES_LIST: &str = "nodes_list";
pub const NODE_EXEC: &str = "node_exec";
pub const NODE_FACTS: &str = "node_facts";
pub const NAMES: [&str; 3] = [NODES_LIST, NODE_EXEC, NODE_FACTS];

pub fn definitions() -> Vec<ToolDef> {
    let node = json!({"type": "string", "description": "node name or id prefix"});
    vec![
        ToolDef {
            name: NODES_LIST,
            description: "List the owner's paired machines (nodes) with state and platform.",
            parameters: json!({"type": "object", "properties": {}}),
        },
        ToolDef {
            name: NODE_EXEC,
            description: "Run a shell command line on a node. The node's exec policy decides; commands not on its allowlist wait for the owner's approval.",
            parameters: json!({"type": "object", "properties": {
                "node": node,
                "command": {"type": "string"},
            }, "required": ["node", "command"]}),
        },
        ToolDef {
            name: NODE_FACTS,
            description: "A node's OS, uptime, load, memory and disks.",
            parameters: json!({"type": "object", "properties": {"node": node}, "required": ["node"]}),
        },
    ]
}

/// The read-only commands of `node_facts`, per platform.
pub fn facts_command(platform: &str) -> Option<&'static str> {
    if platform.starts_with("linux") {
        Some("uname -srm; uptime; free -m; df -hP -x tmpfs -x devtmpfs -x overlay -x squashfs")
    } else if platform.starts_with("darwin") || platform.starts_with("mac") {
        Some("uname -srm; uptime; vm_stat; df -hl")
    } else {
        None
    }
}

/// Runs a node tool. `timeout` is the command's own limit; an approval may add its wait.
pub async fn call(
    gw: &Arc<Gateway>,
    name: &str,
    args: &Value,
    timeout: Duration,
    approval: Duration,
    origin: Option<&Chat>,
    once: Option<String>,
) -> Result<String, ToolError> {
    match name {
        NODES_LIST => {
            Args::new(name, args, &[])?;
            list(gw)
        }
        NODE_EXEC => {
            let a = Args::new(name, args, &["node", "command"])?;
            exec(
                gw,
                a.str("node")?,
                a.str("command")?,
                timeout,
                approval,
                origin,
                once,
            )
            .await
        }
        NODE_FACTS => {
            let node = Args::new(name, args, &["node"])?.str("node")?;
            let platform = run::find(&gw.nodes.registry.list(), node)
                .map_err(refusal)?
                .platform;
            let command = facts_command(&platform).ok_or_else(|| {
                ToolError::Refused(format!(
                    "node_facts knows Linux and macOS nodes, not {platform}"
                ))
            })?;
            exec(gw, node, command, timeout, approval, origin, once).await
        }
        other => Err(ToolError::Unknown(other.into())),
    }
}

fn list(gw: &Gateway) -> Result<String, ToolError> {
    let (pending, paired) = gw
        .nodes
        .store
        .list(crate::gateway::nodes::now_ms())
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    if paired.is_empty() && pending.is_empty() {
        return Ok("No nodes are paired with this assistant.".into());
    }
    let mut out = String::from("NAME  ID  PLATFORM  STATE  ADDRESS\n");
    for d in &paired {
        let n = gw.nodes.paired_node(d);
        let state = match (n.connected, n.revoked) {
            (_, true) => "revoked",
            (true, _) => "connected",
            (false, _) => "disconnected",
        };
        out.push_str(&format!(
            "{}  {}  {}  {state}  {}\n",
            n.display_name.as_deref().unwrap_or("-"),
            &n.node_id[..12],
            n.platform,
            n.remote_ip.as_deref().unwrap_or("-"),
        ));
    }
    for p in &pending {
        out.push_str(&format!(
            "{}  {}  {}  waiting for the owner's approval  -\n",
            p.display_name.as_deref().unwrap_or("-"),
            crate::protocol::device::short_id(&p.device_id),
            p.platform,
        ));
    }
    Ok(out)
}

async fn exec(
    gw: &Arc<Gateway>,
    node: &str,
    command: &str,
    timeout: Duration,
    approval: Duration,
    origin: Option<&Chat>,
    once: Option<String>,
) -> Result<String, ToolError> {
    let out = run::run(gw, node, command, Some(timeout), approval, origin, once)
        .await
        .map_err(refusal)?;
    Ok(render(&out))
}

/// What the model reads of a command's run.
pub fn render(out: &RunOutput) -> String {
    let mut text = match (out.exit_code, out.timed_out, &out.error) {
        (_, true, _) => "timed out (killed)".to_string(),
        (_, _, Some(e)) => format!("did not start: {e}"),
        (Some(code), _, _) => format!("exit code {code}"),
        (None, _, _) => "ended by a signal".to_string(),
    };
    if !out.stdout.is_empty() {
        text.push_str("\nstdout:\n");
        text.push_str(&out.stdout);
    }
    if !out.stderr.is_empty() {
        text.push_str("\nstderr:\n");
        text.push_str(&out.stderr);
    }
    text
}

/// A run that did not happen, as the model reads it: refusals it must respect, failures it may
/// report.
fn refusal(e: RunError) -> ToolError {
    match &e {
        RunError::NoNode(_) | RunError::Ambiguous { .. } => ToolError::BadArguments(e.to_string()),
        RunError::Disabled(_)
        | RunError::Denied { .. }
        | RunError::NotAnswered(_)
        | RunError::Node { .. } => ToolError::Refused(e.to_string()),
        RunError::Policy { .. }
        | RunError::Invoke(_)
        | RunError::Lost { .. }
        | RunError::BadAnswer(_) => ToolError::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_a_fixed_read_only_set_per_platform() {
        let linux = facts_command("linux").unwrap();
        for program in ["uname", "uptime", "free", "df"] {
            assert!(linux.contains(program));
        }
        assert!(facts_command("darwin").unwrap().contains("vm_stat"));
        assert_eq!(facts_command("win32"), None);
        // Each is analysable for an allowlist: no redirection, substitution or pipe into a shell.
        for cmd in [linux, facts_command("darwin").unwrap()] {
            assert!(crate::exec::analyze::shell(cmd).is_ok(), "{cmd}");
        }
    }

    #[test]
    fn a_run_reads_as_exit_code_and_streams() {
        let out = RunOutput {
            exit_code: Some(0),
            stdout: "CONTAINER ID\n".into(),
            ..Default::default()
        };
        assert_eq!(render(&out), "exit code 0\nstdout:\nCONTAINER ID\n");
        let killed = RunOutput {
            timed_out: true,
            ..Default::default()
        };
        assert!(render(&killed).starts_with("timed out"));
    }

    #[test]
    fn the_owners_no_is_a_refusal_the_model_reads() {
        let denied = refusal(RunError::Denied {
            node: "desk".into(),
            by: "@owner".into(),
        });
        assert_eq!(denied.outcome(), "refused");
        assert!(denied.to_string().contains("denied by @owner"));
        assert_eq!(
            refusal(RunError::NoNode("x".into())).outcome(),
            "bad-arguments"
        );
    }
}
