//! `clawops pairing list|approve|reject|revoke`: the pending Telegram pairing codes of a running
//! gateway, approving or rejecting one, and taking an approved sender off the list.

use clap::Subcommand;

use super::GatewayAccess;

#[derive(Subcommand)]
pub enum PairingAction {
    /// Pending pairing codes of a channel (`telegram`, or the Channel's name).
    List {
        channel: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pairing code: its sender may chat from now on.
    Approve {
        channel: String,
        code: String,
        /// Tell the sender they are approved.
        #[arg(long)]
        notify: bool,
    },
    /// Reject a pairing code (the sender gets a new one if they write again).
    Reject { channel: String, code: String },
    /// Take an approved sender (their Telegram user id) off the list: they must pair again.
    Revoke { channel: String, sender: String },
}

/// Runs the command against the gateway `access` reaches.
pub async fn run(action: PairingAction, access: GatewayAccess) -> anyhow::Result<()> {
    let api = access.client()?;
    match action {
        PairingAction::List { channel, json } => {
            let body = api.get(&format!("/api/pairing/{channel}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", pairing_table(&serde_json::from_value(body)?));
            }
        }
        PairingAction::Approve {
            channel,
            code,
            notify,
        } => {
            let request = crate::api::ApproveRequest { code, notify };
            let body = api
                .post(
                    &format!("/api/pairing/{channel}/approve"),
                    &serde_json::to_value(&request)?,
                )
                .await?;
            let body: crate::api::Approved = serde_json::from_value(body)?;
            let sender = body
                .approved
                .sender
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let told = match (notify, body.notified) {
                (true, true) => "; they were told",
                (true, false) => "; telling them failed (see the gateway log)",
                _ => "",
            };
            println!(
                "Approved Telegram user {}{sender} on channel {}{told}.",
                body.approved.id, body.channel
            );
        }
        PairingAction::Reject { channel, code } => {
            let request = serde_json::to_value(crate::api::RejectRequest { code: code.clone() })?;
            api.post(&format!("/api/pairing/{channel}/reject"), &request)
                .await?;
            println!("Rejected pairing code {code} on channel {channel}.");
        }
        PairingAction::Revoke { channel, sender } => {
            let request = serde_json::to_value(crate::api::RevokeRequest {
                sender: sender.clone(),
            })?;
            api.post(&format!("/api/pairing/{channel}/revoke"), &request)
                .await?;
            println!("Telegram user {sender} on channel {channel} must pair again.");
        }
    }
    Ok(())
}

/// The pending requests as a table.
fn pairing_table(list: &crate::api::PairingList) -> String {
    let (channel, approved) = (&list.channel, list.approved_senders);
    if list.pending.is_empty() {
        return format!(
            "No pending pairing requests on channel {channel} ({approved} approved).\n"
        );
    }
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut out = format!(
        "{:<10} {:<18} {:<20} {:<22} {}\n",
        "Code", "Telegram user id", "Sender", "Requested", "Expires"
    );
    for p in &list.pending {
        out += &format!(
            "{:<10} {:<18} {:<20} {:<22} {}\n",
            p.code,
            p.id,
            p.sender.as_deref().unwrap_or("-"),
            time(&p.requested_at),
            time(&p.expires_at)
        );
    }
    out + &format!("Approve with: clawops pairing approve {channel} <CODE>\n")
}
