//! `k8s_events`: recent events of one object, a namespace or the cluster, newest first. The API
//! server returns events in name order, so all matching ones are read (paged, each reduced to a
//! row) and the newest kept.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;
use kube::{Api, Client};

use super::read::Read;
use super::render::events::{EventRow, newest};
use crate::gateway::tools::ToolError;
use crate::patrol::cluster::fetch::list_all;

/// Whose events: a namespace (None for all), and optionally the object's kind and name.
pub struct Of<'a> {
    pub namespace: Option<&'a str>,
    /// As the API spells it: `Pod`.
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl Of<'_> {
    fn field_selector(&self) -> Option<String> {
        let terms: Vec<String> = [
            self.kind.map(|k| format!("involvedObject.kind={k}")),
            self.name.map(|n| format!("involvedObject.name={n}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!terms.is_empty()).then(|| terms.join(","))
    }

    /// `pod web-1 in namespace prod`, `namespace prod`, `the cluster`.
    fn words(&self) -> String {
        let place = self.namespace.map(|ns| format!("namespace {ns}"));
        let object = match (self.kind, self.name) {
            (Some(k), Some(n)) => Some(format!("{} {n}", k.to_ascii_lowercase())),
            (Some(k), None) => Some(format!("every {}", k.to_ascii_lowercase())),
            (None, Some(n)) => Some(format!("objects named {n}")),
            (None, None) => None,
        };
        match (object, place) {
            (Some(o), Some(p)) => format!("{o} in {p}"),
            (Some(o), None) => o,
            (None, Some(p)) => p,
            (None, None) => "the cluster".into(),
        }
    }
}

pub async fn recent(
    client: &Client,
    of: Of<'_>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<String, ToolError> {
    let api: Api<Event> = match of.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let r = Read {
        verb: "list",
        resource: "events",
        singular: "event",
        namespace: of.namespace,
        name: None,
    };
    let selector = of.field_selector();
    let rows = list_all(api, selector.as_deref(), |e: Event| {
        Some(EventRow::from(&e))
    })
    .await
    .map_err(|e| r.error(e))?;
    if rows.is_empty() {
        return Ok(format!(
            "no events of {} (the API server keeps events about an hour)",
            of.words()
        ));
    }
    Ok(format!(
        "events of {}, newest first:\n{}",
        of.words(),
        newest(rows, limit as usize, now)
    ))
}
