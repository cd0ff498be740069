//! The read-only cluster tools the model may call: list, describe, events, pod logs (when the
//! Agent opts in) and usage, each answering in compact text. Secrets are out of reach by
//! construction: only the kinds in [`kind::Kind`] can be read, through their typed APIs.

mod defs;
mod events;
pub mod kind;
mod logs;
mod objects;
mod read;
mod render;
mod usage;

#[cfg(test)]
mod golden_tests;

use chrono::Utc;
use serde_json::Value;

use super::args::Args;
use crate::gateway::assistant::model::ToolDef;
use crate::gateway::tools::ToolError;
use kind::Kind;
use objects::{Op, Request};

/// Objects in a list unless the model asks for another number.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// The cluster tools of one gateway, reading through its ServiceAccount.
#[derive(Clone)]
pub struct ClusterTools {
    client: kube::Client,
    pod_logs: bool,
}

impl ClusterTools {
    /// `pod_logs`: whether the Agent opted in to the pod_logs tool (spec.tools.podLogs).
    pub fn new(client: kube::Client, pod_logs: bool) -> Self {
        Self { client, pod_logs }
    }

    /// The tool definitions offered to the model (pod_logs only when opted in).
    pub fn definitions(&self) -> Vec<ToolDef> {
        defs::definitions(self.pod_logs)
    }

    /// Runs tool `name` with `args` (a JSON object). Unknown name → ToolError::Unknown.
    pub async fn call(&self, name: &str, args: &Value) -> Result<String, ToolError> {
        let now = Utc::now();
        let limit = |a: &Args| a.count("limit", DEFAULT_LIMIT, 1, MAX_LIMIT);
        match name {
            defs::LIST => {
                let a = Args::new(name, args, &["kind", "namespace", "labelSelector", "limit"])?;
                let kind = Kind::parse(a.str("kind")?)?;
                let (namespace, selector, limit) = (
                    a.namespace("namespace")?,
                    a.selector("labelSelector")?,
                    limit(&a)?,
                );
                if kind == Kind::Events && selector.is_some() {
                    return Err(ToolError::BadArguments(
                        "events have no labels to select by; use k8s_events with kind and name"
                            .into(),
                    ));
                }
                if kind == Kind::Events {
                    // Events only make sense newest first, which the API server cannot sort.
                    let of = events::Of {
                        namespace,
                        kind: None,
                        name: None,
                    };
                    return events::recent(&self.client, of, limit, now).await;
                }
                let op = Op::List { selector, limit };
                objects::run(
                    &self.client,
                    Request {
                        kind,
                        namespace,
                        op,
                        now,
                    },
                )
                .await
            }
            defs::GET => {
                let a = Args::new(name, args, &["kind", "name", "namespace"])?;
                let kind = Kind::parse(a.str("kind")?)?;
                let op = Op::Get {
                    name: a.name("name")?,
                };
                let namespace = a.namespace("namespace")?;
                objects::run(
                    &self.client,
                    Request {
                        kind,
                        namespace,
                        op,
                        now,
                    },
                )
                .await
            }
            defs::EVENTS => {
                let a = Args::new(name, args, &["namespace", "kind", "name", "limit"])?;
                let kind = a.opt_str("kind")?.map(kind::event_kind).transpose()?;
                let of = events::Of {
                    namespace: a.namespace("namespace")?,
                    kind: kind.as_deref(),
                    name: a.opt_name("name")?,
                };
                events::recent(&self.client, of, limit(&a)?, now).await
            }
            defs::LOGS if !self.pod_logs => Err(ToolError::Refused(
                "pod_logs is not enabled for this agent (spec.tools.podLogs)".into(),
            )),
            defs::LOGS => {
                let a = Args::new(
                    name,
                    args,
                    &["name", "namespace", "container", "tailLines", "previous"],
                )?;
                let l = logs::Logs {
                    pod: a.name("name")?,
                    namespace: a.namespace("namespace")?.ok_or_else(|| {
                        ToolError::BadArguments(format!("{name} needs `namespace`"))
                    })?,
                    container: a.opt_label("container", "container")?,
                    tail_lines: a.count("tailLines", 50, 1, MAX_LIMIT)?,
                    previous: a.flag("previous")?,
                };
                logs::read(&self.client, l).await
            }
            defs::USAGE => {
                let a = Args::new(name, args, &["kind", "namespace", "limit"])?;
                let of = usage::Of::parse(a.str("kind")?)?;
                usage::usage(&self.client, of, a.namespace("namespace")?, limit(&a)?).await
            }
            other => Err(ToolError::Unknown(other.to_string())),
        }
    }
}
