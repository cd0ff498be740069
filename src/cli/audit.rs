//! `clawops audit [--since 1h] [--tool NAME] [--json]`: the assistant's tool calls and the
//! commands asked of nodes, from a running gateway's audit logs.

use clap::Args;

use super::GatewayAccess;
use crate::api::AuditLog;

#[derive(Args)]
pub struct AuditArgs {
    /// Only what happened within this long, e.g. `30m`, `1h`, `2d`.
    #[arg(long)]
    pub since: Option<String>,
    /// Only this tool's calls (the node commands are listed unless a tool is named).
    #[arg(long)]
    pub tool: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: AuditArgs, access: GatewayAccess) -> anyhow::Result<()> {
    let mut path = String::from("/api/audit");
    let mut query = Vec::new();
    if let Some(s) = &args.since {
        if crate::crd::common::parse_duration(s).is_none() {
            anyhow::bail!("--since {s}: not a duration; use e.g. 30m, 1h or 2d");
        }
        query.push(format!("since={s}"));
    }
    if let Some(t) = &args.tool {
        query.push(format!("tool={t}"));
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let body = access.client()?.get(&path).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let log: AuditLog = serde_json::from_value(body)?;
    if log.tools.is_empty() && log.execs.is_empty() {
        println!("Nothing recorded.");
    }
    for t in &log.tools {
        println!(
            "{}  tool  {:<12} {:<13} {:>6} ms {:>7} B  {}  {}",
            t.ts.format("%Y-%m-%d %H:%M:%S"),
            t.tool,
            t.outcome,
            t.duration_ms,
            t.result_bytes,
            t.chat,
            t.arguments
        );
    }
    for e in &log.execs {
        println!(
            "{}  exec  {:<12} {:<13} {:>6} ms  exit {}  by {}  {}",
            e.ts.format("%Y-%m-%d %H:%M:%S"),
            e.node,
            e.decision,
            e.duration_ms,
            e.exit_code.map_or("-".to_string(), |c| c.to_string()),
            e.by.as_deref().unwrap_or("-"),
            e.command
        );
    }
    Ok(())
}
