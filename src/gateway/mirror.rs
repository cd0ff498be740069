//! In a cluster, what the owner should see of a channel is mirrored into its Channel's status:
//! the bot's username, pending pairing codes and the number of approved senders. Written only
//! when it changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::Gateway;
use super::pairing::Request;
use crate::crd::Channel;

pub const INTERVAL: Duration = Duration::from_secs(5);

/// The status fields the gateway owns (the operator owns the conditions).
pub fn channel_status(bot: Option<&str>, pending: &[Request], approved: usize) -> Value {
    json!({
        "botUsername": bot.map(|u| format!("@{u}")),
        "pendingPairings": pending.iter().map(|r| json!({
            "code": r.code,
            "sender": r.id,
            "senderName": r.meta.label(),
            "expiresAt": r.expires_at().to_rfc3339_opts(SecondsFormat::Secs, true),
        })).collect::<Vec<_>>(),
        "pendingCount": pending.len(),
        "approvedSenders": approved,
    })
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
