//! In a cluster, what the owner should see of a channel is mirrored into its Channel's status:
//! the bot's username, pending pairing codes and the number of approved senders. Written only
//! when it changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::Gateway;
use super::cron::status::k8s_time;
use super::telegram::pairing::Request;
use crate::crd::Channel;
use crate::crd::channel::{ChannelStatus, PendingPairing};

pub const INTERVAL: Duration = Duration::from_secs(5);

/// The status fields the gateway owns (the operator owns the conditions).
pub fn channel_status(bot: Option<&str>, pending: &[Request], approved: usize) -> Value {
    let status = ChannelStatus {
        bot_username: bot.map(|u| format!("@{u}")),
        pending_pairings: pending
            .iter()
            .map(|r| PendingPairing {
                code: r.code.clone(),
                sender: r.id.clone(),
                sender_name: r.meta.label(),
                expires_at: k8s_time(r.expires_at()),
            })
            .collect(),
        pending_count: Some(u32::try_from(pending.len()).unwrap_or(u32::MAX)),
        approved_senders: Some(u32::try_from(approved).unwrap_or(u32::MAX)),
        ..Default::default()
    };
    let mut body = serde_json::to_value(&status).expect("a Channel status serializes");
    // The typed status leaves empty fields out, which a merge patch reads as "unchanged":
    // no bot name must remove the old one, and no pending request must empty the list.
    if status.bot_username.is_none() {
        body["botUsername"] = Value::Null;
    }
    if status.pending_pairings.is_empty() {
        body["pendingPairings"] = json!([]);
    }
    body
}

/// Writes `status` unless it equals what was last written.
pub async fn sync(
    api: &Api<Channel>,
    name: &str,
    status: Value,
    last: &mut HashMap<String, Value>,
) -> Result<bool, kube::Error> {
    if last.get(name) == Some(&status) {
        return Ok(false);
    }
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status.clone() })),
    )
    .await?;
    last.insert(name.to_string(), status);
    Ok(true)
}

/// Starts the mirror when the gateway runs for an Agent in a cluster and has a client.
pub fn start(gw: &Arc<Gateway>) -> Option<JoinHandle<()>> {
    match (&gw.kube, &gw.config.kubernetes) {
        (Some(client), Some(k)) => Some(tokio::spawn(run(
            gw.clone(),
            client.clone(),
            k.namespace.clone(),
        ))),
        _ => None,
    }
}

/// Mirrors every channel every [`INTERVAL`].
pub async fn run(gw: Arc<Gateway>, client: Client, namespace: String) {
    let api = Api::<Channel>::namespaced(client, &namespace);
    let mut last = HashMap::new();
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tick.tick().await;
        for c in &gw.channels {
            let bot = c.probe.lock().await.username.clone();
            let status = channel_status(
                bot.as_deref(),
                &c.pairing.pending(Utc::now()).await,
                c.pairing.allowed_count().await,
            );
            if let Err(e) = sync(&api, &c.name, status, &mut last).await {
                tracing::warn!(channel = %c.name, %namespace, error = %e, "Channel status not updated");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_mirror_clears_the_bot_name_and_empties_the_list() {
        let body = channel_status(None, &[], 3);
        assert_eq!(
            body,
            json!({"botUsername": null, "pendingPairings": [], "pendingCount": 0, "approvedSenders": 3})
        );
        // Every field written is one the typed status reads back.
        let typed: ChannelStatus = serde_json::from_value(body).expect("a Channel status");
        assert_eq!(typed.approved_senders, Some(3));
        assert_eq!(typed.pending_count, Some(0));
    }
}
