//! What the model is told about the cluster tools. Sent with every model request, so every word
//! costs: names, descriptions and schemas are as short as still clear.

use serde_json::{Value, json};

use super::kind::Kind;
use crate::gateway::assistant::model::ToolDef;

pub const LIST: &str = "k8s_list";
pub const GET: &str = "k8s_get";
pub const EVENTS: &str = "k8s_events";
pub const LOGS: &str = "pod_logs";
pub const USAGE: &str = "k8s_usage";

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

fn kinds() -> Value {
    json!({"type": "string", "enum": Kind::ALL.map(Kind::plural)})
}

fn limit() -> Value {
    json!({"type": "integer", "description": "default 50, max 200"})
}

pub fn definitions(pod_logs: bool) -> Vec<ToolDef> {
    let s = || json!({"type": "string"});
    let mut defs = vec![
        ToolDef {
            name: LIST,
            description: "List cluster objects, one line each",
            parameters: object(
                json!({"kind": kinds(), "namespace": {"type": "string", "description": "omit for all"},
                    "labelSelector": s(), "limit": limit()}),
                &["kind"],
            ),
        },
        ToolDef {
            name: GET,
            description: "Describe one object: status, containers, conditions",
            parameters: object(
                json!({"kind": kinds(), "name": s(), "namespace": s()}),
                &["kind", "name"],
            ),
        },
        ToolDef {
            name: EVENTS,
            description: "Recent events, newest first: of one object (kind+name), a namespace or all",
            parameters: object(
                json!({"namespace": s(), "kind": s(), "name": s(), "limit": limit()}),
                &[],
            ),
        },
        ToolDef {
            name: USAGE,
            description: "CPU and memory in use now (metrics-server)",
            parameters: object(
                json!({"kind": {"type": "string", "enum": ["nodes", "pods"]}, "namespace": s(),
                    "limit": limit()}),
                &["kind"],
            ),
        },
    ];
    if pod_logs {
        defs.push(ToolDef {
            name: LOGS,
            description: "Last lines of a pod's log",
            parameters: object(
                json!({"name": s(), "namespace": s(), "container": s(),
                    "tailLines": {"type": "integer", "description": "default 50, max 200"},
                    "previous": {"type": "boolean", "description": "the run before the last restart"}}),
                &["name", "namespace"],
            ),
        });
    }
    defs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_size(defs: &[ToolDef]) -> usize {
        defs.iter().map(|d| d.wire().to_string().len()).sum()
    }

    #[test]
    fn the_definitions_stay_small() {
        let with = wire_size(&definitions(true));
        let without = wire_size(&definitions(false));
        println!("cluster tool definitions: {with} bytes with pod_logs, {without} without");
        assert!(with < 2500, "{with} bytes with pod_logs");
        assert!(without < with);
    }

    #[test]
    fn pod_logs_only_when_opted_in() {
        let names = |on| definitions(on).iter().map(|d| d.name).collect::<Vec<_>>();
        assert_eq!(names(false), [LIST, GET, EVENTS, USAGE]);
        assert_eq!(names(true), [LIST, GET, EVENTS, USAGE, LOGS]);
    }

    #[test]
    fn no_schema_offers_secrets() {
        let text = serde_json::to_string(
            &definitions(true)
                .iter()
                .map(ToolDef::wire)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(!text.to_lowercase().contains("secret"), "{text}");
    }
}
