//! Exec approvals: a command a node would not run without its owner's yes waits here. The owner
//! answers with the Telegram buttons (Allow once / Always allow / Deny) or `clawops approvals
//! resolve`; no answer within the time limit is the policy's `askFallback`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use crate::api::PendingExec;
use crate::gateway::Gateway;
use crate::gateway::prompts::{Chat, Choice};
use crate::gateway::telegram::buttons;

/// How long an approval waits for the owner (Clawdbot's 120 s).
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(120);

/// The owner's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    AllowOnce,
    AllowAlways,
    Deny,
}

impl Decision {
    pub fn key(self) -> &'static str {
        match self {
            Decision::AllowOnce => "allow-once",
            Decision::AllowAlways => "allow-always",
            Decision::Deny => "deny",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "allow-once" | "once" => Some(Decision::AllowOnce),
            "allow-always" | "always" => Some(Decision::AllowAlways),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }
}

const CHOICES: [Choice; 3] = [
    Choice {
        label: "Allow once",
        key: "once",
    },
    Choice {
        label: "Always allow",
        key: "always",
    },
    Choice {
        label: "Deny",
        key: "deny",
    },
];

/// The owner's answer and who gave it.
type Answer = (Decision, String);

#[derive(Default)]
pub struct ExecApprovals {
    waiting: Mutex<HashMap<String, (PendingExec, oneshot::Sender<Answer>)>>,
}

impl ExecApprovals {
    pub fn list(&self) -> Vec<PendingExec> {
        let mut out: Vec<PendingExec> = self
            .waiting
            .lock()
            .expect("approvals lock")
            .values()
            .map(|(p, _)| p.clone())
            .collect();
        out.sort_by_key(|p| p.created_at_ms);
        out
    }

    /// Hands the owner's answer to the waiting command. False when nothing waits under `id`.
    pub fn decide(&self, id: &str, decision: Decision, by: String) -> bool {
        match self.waiting.lock().expect("approvals lock").remove(id) {
            Some((_, tx)) => tx.send((decision, by)).is_ok(),
            None => false,
        }
    }
}

/// Asks the owners about `command` on `node` — in the chat the request came from, if it came
/// from one; the answer and who gave it, or None when nobody answered within `timeout`.
pub async fn ask(
    gw: &Arc<Gateway>,
    node_id: &str,
    node: &str,
    command: &str,
    reason: &str,
    timeout: Duration,
    origin: Option<&Chat>,
) -> Option<Answer> {
    let text = format!(
        "🖥 Node {node} wants to run:\n{command}\n\n{reason}\nAllow it? (expires in {} s)",
        timeout.as_secs()
    );
    let g = gw.clone();
    let id = gw.prompts.open(
        text,
        CHOICES.to_vec(),
        Box::new(move |id, key, by| {
            let decision = Decision::parse(key).unwrap_or(Decision::Deny);
            g.nodes.approvals.decide(id, decision, by.clone());
            Box::pin(async move { outcome(decision, &by) })
        }),
    );
    let (tx, rx) = oneshot::channel();
    let now = chrono::Utc::now().timestamp_millis();
    gw.nodes
        .approvals
        .waiting
        .lock()
        .expect("approvals lock")
        .insert(
            id.clone(),
            (
                PendingExec {
                    id: id.clone(),
                    node_id: node_id.into(),
                    node: node.into(),
                    command: command.into(),
                    reason: reason.into(),
                    created_at_ms: now,
                    expires_at_ms: now + timeout.as_millis() as i64,
                },
                tx,
            ),
        );
    let told = buttons::ask_in(gw, &id, origin).await;
    tracing::info!(approval = %id, %node, told, "exec approval asked: `clawops approvals resolve {id} allow-once|allow-always|deny`");
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(answer)) => Some(answer),
        _ => {
            gw.nodes
                .approvals
                .waiting
                .lock()
                .expect("approvals lock")
                .remove(&id);
            if let Some(closed) = gw.prompts.close(&id, "⏱ No answer in time: not run.") {
                buttons::show(gw, &closed).await;
            }
            None
        }
    }
}

/// The line that replaces the buttons.
pub fn outcome(decision: Decision, by: &str) -> String {
    match decision {
        Decision::AllowOnce => format!("✅ Allowed once by {by}."),
        Decision::AllowAlways => format!("✅ Always allowed by {by}."),
        Decision::Deny => format!("❌ Denied by {by}."),
    }
}
