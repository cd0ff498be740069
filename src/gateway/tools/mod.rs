//! The assistant's tools: what the model may call during a chat turn — the cluster (read-only,
//! with `clusterAccess: read`), a patrol on demand, and the paired nodes (through their exec
//! policy and the owner's approval) — each call with its time limit, its result capped at a
//! stated size, audited and counted.

mod args;
pub mod audit;
pub mod cluster;
pub mod error;
pub mod nodes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use error::ToolError;

use crate::crd::agent::ClusterAccess;
use crate::gateway::Gateway;
use crate::gateway::assistant::model::{ToolCall, ToolDef};
use crate::gateway::assistant::turn::{Origin, ToolFuture, Toolbox};
use crate::gateway::nodes::approvals::APPROVAL_TIMEOUT;

pub const PATROL: &str = "patrol";

/// The tools of one chat turn.
pub struct TurnTools {
    gw: Arc<Gateway>,
    /// The conversation, for the audit log.
    conversation: String,
    origin: Origin,
    defs: Vec<ToolDef>,
    cluster: Option<cluster::ClusterTools>,
    /// How often this turn made each call so far (for the node commands' idempotency keys).
    made: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

/// The cluster tools of this gateway, when it offers them.
fn cluster_tools(gw: &Gateway) -> Option<cluster::ClusterTools> {
    let tools = &gw.config.agent.tools;
    match (&gw.kube, gw.config.agent.cluster_access) {
        (Some(client), ClusterAccess::Read) if tools.cluster => {
            Some(cluster::ClusterTools::new(client.clone(), tools.pod_logs))
        }
        _ => None,
    }
}

/// What tools this gateway offers, and why some are not.
pub fn offered(gw: &Gateway) -> (Vec<ToolDef>, Vec<String>) {
    let tools = &gw.config.agent.tools;
    let mut defs = Vec::new();
    let mut off = Vec::new();
    if tools.cluster {
        match (&gw.kube, gw.config.agent.cluster_access) {
            (Some(_), ClusterAccess::Read) => {
                if let Some(c) = cluster_tools(gw) {
                    defs.extend(c.definitions());
                }
                if patrols(gw).next().is_some() {
                    defs.push(patrol_definition());
                }
            }
            (None, ClusterAccess::Read) => {
                off.push("cluster tools: no Kubernetes client (see the start-up log)".into())
            }
            (_, ClusterAccess::None) => {
                off.push("cluster tools: the Agent has clusterAccess: none".into())
            }
        }
    }
    if tools.nodes {
        defs.extend(nodes::definitions());
    }
    (defs, off)
}

fn patrols(gw: &Gateway) -> impl Iterator<Item = &crate::plan::gateway_config::CronConfig> {
    gw.config.crons.iter().filter(|c| c.patrol.is_some())
}

fn patrol_definition() -> ToolDef {
    ToolDef {
        name: PATROL,
        description: "Run a patrol (cluster health check) now; returns its findings.",
        parameters: json!({"type": "object", "properties": {
            "cron": {"type": "string", "description": "the patrol's Cron name; default the first"},
        }}),
    }
}

/// Cuts `text` to `max` bytes (on a character boundary) with a note saying how much was left
/// out, so the model knows it saw part of it.
pub fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n[truncated: showing {cut} of {} bytes; narrow the request to see the rest]",
        &text[..cut],
        text.len()
    )
}

/// A short line naming a call, for the progress line: the tool and its main argument.
pub fn describe(call: &ToolCall) -> String {
    let args = call.args().unwrap_or(Value::Null);
    let main = ["command", "kind", "node", "name", "cron"]
        .iter()
        .find_map(|k| args.get(*k).and_then(Value::as_str));
    let line = match main {
        Some(m) => format!("{} {}", call.name(), audit::redact_text(m)),
        None => call.name().to_string(),
    };
    line.chars().take(80).collect()
}

impl TurnTools {
    pub fn new(gw: Arc<Gateway>, conversation: &str, origin: Origin) -> Self {
        let (defs, _) = offered(&gw);
        let cluster = cluster_tools(&gw);
        Self {
            gw,
            conversation: conversation.into(),
            origin,
            defs,
            cluster,
            made: Default::default(),
        }
    }

    /// The seed of a node command's idempotency key: the message answered, the call and how
    /// many times this turn made it before. The same message answered again after a restart
    /// asks with the same keys, so the node does not run its commands twice; a call the turn
    /// repeats on purpose gets a new one.
    fn once_seed(&self, name: &str, args: &Value) -> Option<String> {
        let message = self.origin.message.as_ref()?;
        let call = format!("{name} {args}");
        let mut made = self.made.lock().expect("made lock");
        let n = made.entry(call.clone()).or_default();
        *n += 1;
        Some(format!("{message}\n{call}\n{n}"))
    }

    fn limit(&self) -> Duration {
        Duration::from_secs(u64::from(self.gw.config.agent.tools.timeout_seconds))
    }

    async fn dispatch(&self, name: &str, args: &Value) -> Result<String, ToolError> {
        if !self.defs.iter().any(|d| d.name == name) {
            return Err(ToolError::Unknown(name.into()));
        }
        let limit = self.limit();
        if name == PATROL {
            return self.patrol(args).await;
        }
        if let Some(c) = &self.cluster
            && !nodes::NAMES.contains(&name)
        {
            return tokio::time::timeout(limit, c.call(name, args))
                .await
                .map_err(|_| ToolError::TimedOut(limit.as_secs()))?;
        }
        // A node command may wait for the owner first: its limit starts after the approval.
        let whole = limit + APPROVAL_TIMEOUT + Duration::from_secs(5);
        let call = nodes::call(
            &self.gw,
            name,
            args,
            limit,
            APPROVAL_TIMEOUT,
            self.origin.chat.as_ref(),
            self.once_seed(name, args),
        );
        tokio::time::timeout(whole, call)
            .await
            .map_err(|_| ToolError::TimedOut(whole.as_secs()))?
    }

    async fn patrol(&self, args: &Value) -> Result<String, ToolError> {
        let wanted = args::Args::new(PATROL, args, &["cron"])?.opt_str("cron")?;
        let cron = patrols(&self.gw)
            .find(|c| wanted.is_none_or(|w| w == c.name))
            .ok_or_else(|| {
                let names: Vec<&str> = patrols(&self.gw).map(|c| c.name.as_str()).collect();
                ToolError::BadArguments(format!(
                    "no patrol Cron {}; there are: {}",
                    wanted.unwrap_or("-"),
                    names.join(", ")
                ))
            })?;
        let spec = cron.patrol.as_ref().expect("a patrol Cron");
        let limit = self.limit();
        let report = tokio::time::timeout(
            limit,
            crate::gateway::cron::patrol::collect(&self.gw, spec, chrono::Utc::now()),
        )
        .await
        .map_err(|_| ToolError::TimedOut(limit.as_secs()))?;
        Ok(report.render())
    }

    async fn run_one(&self, call: &ToolCall) -> String {
        if let Some(p) = &self.origin.progress {
            p(&describe(call));
        }
        let started = Instant::now();
        let args = call.args();
        let result = match &args {
            Ok(a) => self.dispatch(call.name(), a).await,
            Err(why) => Err(ToolError::BadArguments(why.clone())),
        };
        let max = self.gw.config.agent.tools.max_result_bytes as usize;
        let (outcome, text) = match result {
            Ok(text) => ("ok", truncate(text, max)),
            Err(e) => (e.outcome(), format!("error: {e}")),
        };
        self.gw
            .metrics
            .tool_calls
            .get_or_create(&vec![
                ("tool".to_string(), metric_name(call.name(), &self.defs)),
                ("outcome".to_string(), outcome.to_string()),
            ])
            .inc();
        self.gw.tool_audit.append(&audit::ToolRecord {
            ts: chrono::Utc::now(),
            chat: self.conversation.clone(),
            tool: call.name().chars().take(64).collect(),
            arguments: args
                .as_ref()
                .map_or_else(|_| "(malformed)".into(), audit::redact),
            duration_ms: started.elapsed().as_millis() as u64,
            result_bytes: text.len(),
            outcome: outcome.into(),
        });
        tracing::info!(tool = %call.name(), outcome, ms = started.elapsed().as_millis() as u64, "tool call");
        text
    }
}

/// The tool label of the metric: an offered tool's name, else `unknown` (a model inventing
/// names must not grow the metric without bound).
fn metric_name(name: &str, defs: &[ToolDef]) -> String {
    if defs.iter().any(|d| d.name == name) {
        name.to_string()
    } else {
        "unknown".to_string()
    }
}

impl Toolbox for TurnTools {
    fn definitions(&self) -> Vec<ToolDef> {
        self.defs.clone()
    }

    fn run<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        Box::pin(self.run_one(call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::assistant::model::FunctionCall;

    #[test]
    fn results_are_cut_with_a_note_on_a_character_boundary() {
        assert_eq!(truncate("short".into(), 100), "short");
        let cut = truncate("é".repeat(100), 51);
        assert!(cut.starts_with(&"é".repeat(25)), "{cut}");
        assert!(cut.contains("[truncated: showing 50 of 200 bytes"), "{cut}");
    }

    #[test]
    fn a_call_is_described_by_its_tool_and_main_argument_without_secrets() {
        let call = |args: &str| ToolCall {
            id: "c".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "node_exec".into(),
                arguments: args.into(),
            },
        };
        assert_eq!(
            describe(&call(r#"{"node":"desk","command":"docker ps"}"#)),
            "node_exec docker ps"
        );
        assert_eq!(
            describe(&call(
                r#"{"command":"curl -H 'Authorization: Bearer s3cret'"}"#
            )),
            "node_exec curl -H 'Authorization: Bearer [redacted]'"
        );
        assert_eq!(describe(&call("{oops")), "node_exec");
    }

    #[test]
    fn invented_tool_names_do_not_grow_the_metric() {
        let defs = nodes::definitions();
        assert_eq!(metric_name("node_exec", &defs), "node_exec");
        assert_eq!(metric_name("rm_rf_everything", &defs), "unknown");
    }
}
