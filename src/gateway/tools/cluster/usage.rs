//! `k8s_usage`: what nodes and pods use now, from metrics-server (`metrics.k8s.io/v1beta1`).
//! A cluster without metrics-server is an answer, not an error: the model tells the user.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use serde_json::Value;

use super::read::Read;
use super::render::usage::{self, Usage};
use crate::gateway::tools::ToolError;
use crate::patrol::cluster::facts::{bytes, cpu_milli};
use crate::patrol::cluster::fetch::list_all;

pub const NOT_INSTALLED: &str =
    "metrics-server is not installed (metrics.k8s.io not served); usage is unavailable";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Of {
    Nodes,
    Pods,
}

impl Of {
    pub fn parse(given: &str) -> Result<Of, ToolError> {
        match given.trim().to_ascii_lowercase().as_str() {
            "nodes" | "node" => Ok(Of::Nodes),
            "pods" | "pod" => Ok(Of::Pods),
            _ => Err(ToolError::BadArguments(format!(
                "`kind` must be nodes or pods, not {given:?}"
            ))),
        }
    }
}

/// cpu and memory of a `usage` map.
fn sum(usage: Option<&Value>) -> (u64, u64) {
    let q = |k: &str| {
        usage
            .and_then(|u| u.get(k))
            .and_then(Value::as_str)
            .map(|s| Quantity(s.to_string()))
    };
    (
        q("cpu").map(|q| cpu_milli(&q)).unwrap_or(0),
        q("memory").map(|q| bytes(&q)).unwrap_or(0),
    )
}

/// A NodeMetrics' or PodMetrics' usage (a pod's is its containers' together).
pub(super) fn usage_of(o: &DynamicObject) -> Usage {
    let (cpu_milli, memory_bytes) = match o.data.get("containers").and_then(Value::as_array) {
        Some(containers) => containers
            .iter()
            .map(|c| sum(c.get("usage")))
            .fold((0, 0), |(a, b), (c, m)| (a + c, b + m)),
        None => sum(o.data.get("usage")),
    };
    let name = o.metadata.name.clone().unwrap_or_default();
    Usage {
        name: match &o.metadata.namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        },
        cpu_milli,
        memory_bytes,
        allocatable: None,
    }
}

pub async fn usage(
    client: &Client,
    of: Of,
    namespace: Option<&str>,
    limit: u32,
) -> Result<String, ToolError> {
    let (kind, plural) = match of {
        Of::Nodes => ("NodeMetrics", "nodes"),
        Of::Pods => ("PodMetrics", "pods"),
    };
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    let namespace = namespace.filter(|_| of == Of::Pods);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let resource = format!("{plural}.metrics.k8s.io");
    let r = Read {
        verb: "list",
        resource: &resource,
        singular: plural,
        namespace,
        name: None,
    };
    let rows = match list_all(api, None, |o| Some(usage_of(&o))).await {
        Ok(rows) => rows,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(NOT_INSTALLED.into()),
        Err(kube::Error::Api(s)) if s.code == 503 => {
            return Ok(format!(
                "metrics-server is not answering (metrics.k8s.io: 503 {}); usage is unavailable",
                s.message.trim()
            ));
        }
        Err(e) => return Err(r.error(e)),
    };
    if rows.is_empty() {
        return Ok(format!("metrics-server has no {plural} measured yet"));
    }
    Ok(match of {
        Of::Nodes => usage::nodes(with_allocatable(client, rows).await),
        Of::Pods => usage::pods(rows, limit as usize),
    })
}

/// Each node's allocatable, for its share; without it (the Nodes unreadable) the shares are
/// left out rather than the usage.
async fn with_allocatable(client: &Client, mut rows: Vec<Usage>) -> Vec<Usage> {
    let nodes = list_all(Api::<Node>::all(client.clone()), None, |n: Node| {
        let alloc = n.status.as_ref()?.allocatable.as_ref()?;
        let cpu = alloc.get("cpu").map(cpu_milli).unwrap_or(0);
        let mem = alloc.get("memory").map(bytes).unwrap_or(0);
        Some((n.metadata.name.clone()?, (cpu, mem)))
    })
    .await
    .map(|n| n.into_iter().collect::<HashMap<_, _>>())
    .unwrap_or_default();
    for r in &mut rows {
        r.allocatable = nodes.get(&r.name).copied();
    }
    rows
}
