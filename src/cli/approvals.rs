//! `clawops approvals list|resolve`: commands waiting for the owner's yes on a running gateway,
//! and answering one as the Telegram buttons would.

use clap::Subcommand;

use super::GatewayAccess;
use crate::api::{PendingExec, ResolveApproval};

#[derive(Subcommand)]
pub enum ApprovalsAction {
    /// Commands waiting for approval.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Answer one: allow-once, allow-always or deny.
    Resolve { id: String, decision: String },
}

pub async fn run(action: ApprovalsAction, access: GatewayAccess) -> anyhow::Result<()> {
    let api = access.client()?;
    match action {
        ApprovalsAction::List { json } => {
            let body = api.get("/api/approvals").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let waiting: Vec<PendingExec> = serde_json::from_value(body)?;
            if waiting.is_empty() {
                println!("No command waits for approval.");
            }
            for p in waiting {
                println!(
                    "{}  {:<12} {}\n          {}",
                    p.id, p.node, p.command, p.reason
                );
            }
        }
        ApprovalsAction::Resolve { id, decision } => {
            let body = serde_json::to_value(ResolveApproval { id, decision })?;
            let done = api.post("/api/approvals/resolve", &body).await?;
            println!(
                "Approval {}: {}.",
                done["id"].as_str().unwrap_or("?"),
                done["decision"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}
