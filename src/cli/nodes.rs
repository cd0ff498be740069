//! `clawops nodes list|approve|reject|revoke|rotate|exec|run`: the paired machines of a running
//! gateway, their exec settings, and running a command on one through its exec policy.

use clap::Subcommand;

use super::GatewayAccess;
use super::client::ApiClient;
use crate::api::{
    ExecEdit, NodeAction, NodeExec, NodeList, NodeRunReply, NodeRunRequest, PairedNode,
};

#[derive(Subcommand)]
pub enum NodesAction {
    /// Nodes waiting for approval, and paired ones with their state.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending node (its request id, or its node id or a prefix of it).
    Approve { id: String },
    /// Reject a pending node; it may ask again.
    Reject { id: String },
    /// Revoke a paired node: it is disconnected and refused until approved again.
    Revoke { id: String },
    /// Give a paired node a new token (the old one stops working; the node reconnects).
    Rotate { id: String },
    /// Show or change the gateway's exec settings for a paired node (its NodePairing's
    /// `spec.exec` in a cluster): `clawops nodes exec desk --allow /usr/bin/uptime`.
    Exec {
        /// The node: its id, a prefix of it, or its display name.
        node: String,
        /// deny, allowlist or full.
        #[arg(long)]
        security: Option<String>,
        /// off, on-miss or always.
        #[arg(long)]
        ask: Option<String>,
        /// What a command gets when nobody answers: deny or full.
        #[arg(long)]
        ask_fallback: Option<String>,
        /// Add a pattern of a program's resolved path (repeatable), e.g. /usr/bin/uptime.
        #[arg(long)]
        allow: Vec<String>,
        /// Remove a pattern (repeatable).
        #[arg(long)]
        disallow: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a command line on a node (`clawops nodes run desk -- uptime`), through its policy.
    Run {
        /// The node: its id, a prefix of it, or its display name.
        node: String,
        /// Seconds the command may run.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Seconds to wait for the owner when the node asks for approval.
        #[arg(long, default_value_t = 120)]
        approval_timeout: u64,
        /// The command line, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// Runs the command against the gateway `access` reaches; the exit code of `run` is the
/// command's.
pub async fn run(action: NodesAction, access: GatewayAccess) -> anyhow::Result<Option<i32>> {
    let api = access.client()?;
    match action {
        NodesAction::List { json } => {
            let body = api.get("/api/nodes").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", table(&serde_json::from_value(body)?));
            }
        }
        NodesAction::Approve { id } => act(&api, "approve", id).await?,
        NodesAction::Reject { id } => act(&api, "reject", id).await?,
        NodesAction::Revoke { id } => act(&api, "revoke", id).await?,
        NodesAction::Rotate { id } => act(&api, "rotate", id).await?,
        NodesAction::Exec {
            node,
            security,
            ask,
            ask_fallback,
            allow,
            disallow,
            json,
        } => {
            let path = format!("/api/nodes/{}/exec", ApiClient::segment(&node));
            let edit: ExecEdit = serde_json::from_value(serde_json::json!({
                "security": security, "ask": ask, "askFallback": ask_fallback,
                "add": allow, "remove": disallow,
            }))
            .map_err(|e| anyhow::anyhow!("{e}; see clawops nodes exec --help"))?;
            let body = if edit == ExecEdit::default() {
                api.get(&path).await?
            } else {
                api.post(&path, &serde_json::to_value(&edit)?).await?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", exec_text(&serde_json::from_value(body)?));
            }
        }
        NodesAction::Run {
            node,
            timeout,
            approval_timeout,
            command,
        } => {
            let request = NodeRunRequest {
                node,
                command: command.join(" "),
                timeout_ms: Some(timeout * 1000),
                approval_timeout_ms: Some(approval_timeout * 1000),
            };
            let body = api
                .post("/api/nodes/run", &serde_json::to_value(&request)?)
                .await?;
            let out: NodeRunReply = serde_json::from_value(body)?;
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            if let Some(e) = &out.error {
                eprintln!("{e}");
            }
            return Ok(Some(out.exit_code.unwrap_or(if out.timed_out {
                124
            } else {
                1
            })));
        }
    }
    Ok(None)
}

async fn act(api: &ApiClient, verb: &str, id: String) -> anyhow::Result<()> {
    let body = api
        .post(
            &format!("/api/nodes/{verb}"),
            &serde_json::to_value(NodeAction { id })?,
        )
        .await?;
    if verb == "reject" {
        println!(
            "Rejected pairing request {}.",
            body["rejected"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let node: PairedNode = serde_json::from_value(body)?;
    let name = node.display_name.as_deref().unwrap_or("-");
    let done = match verb {
        "approve" => "approved: it connects on its next try",
        "revoke" => "revoked: disconnected, and refused until approved again",
        _ => "given a new token: it reconnects with it",
    };
    println!("Node {name} ({}) {done}.", short(&node.node_id));
    Ok(())
}

/// A node's exec settings as text.
fn exec_text(e: &NodeExec) -> String {
    let word = |v: serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let mut out = format!(
        "Node {} ({}): security {}, ask {}, ask fallback {}  [{}]\n",
        e.display_name.as_deref().unwrap_or("-"),
        short(&e.node_id),
        word(serde_json::json!(e.security)),
        word(serde_json::json!(e.ask)),
        word(serde_json::json!(e.ask_fallback)),
        e.source
    );
    if e.allowlist.is_empty() {
        out.push_str("Allowlist: empty (every command but the safe bins is asked about)\n");
    }
    for p in &e.allowlist {
        let used = match (&p.last_used, &p.last_command) {
            (Some(t), Some(c)) => format!("last used {} ({c})", t.format("%Y-%m-%d %H:%M UTC")),
            _ => "not used yet".into(),
        };
        out.push_str(&format!("  {:<40} {used}\n", p.pattern));
    }
    out
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Pending and paired nodes as a table.
fn table(list: &NodeList) -> String {
    let mut out = String::new();
    if list.pending.is_empty() && list.paired.is_empty() {
        return "No nodes: run `clawops node run --gateway <url>` on a machine to pair it.\n"
            .into();
    }
    if !list.pending.is_empty() {
        out.push_str("Waiting for approval (`clawops nodes approve <node>`):\n");
        for p in &list.pending {
            out.push_str(&format!(
                "  {}  {:<16} {:<8} from {}\n",
                short(&p.node_id),
                p.display_name.as_deref().unwrap_or("-"),
                p.platform,
                p.remote_ip.as_deref().unwrap_or("?"),
            ));
        }
    }
    if !list.paired.is_empty() {
        out.push_str("Paired:\n");
        for n in &list.paired {
            let state = match (n.revoked, n.connected) {
                (true, _) => "revoked",
                (false, true) => "connected",
                (false, false) => "disconnected",
            };
            out.push_str(&format!(
                "  {}  {:<16} {:<8} {:<12} {}\n",
                short(&n.node_id),
                n.display_name.as_deref().unwrap_or("-"),
                n.platform,
                state,
                n.remote_ip.as_deref().unwrap_or(""),
            ));
        }
    }
    out
}
