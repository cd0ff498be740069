//! `k8s_list` and `k8s_get`: typed reads of the readable kinds only, one match from kind to
//! API type, so there is no path from a model's words to an arbitrary resource.

use chrono::{DateTime, Utc};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, PersistentVolumeClaim, Pod, Service,
};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::kind::Kind;
use super::read::Read;
use super::render::{More, Render, table};
use crate::gateway::tools::ToolError;

/// What to read of a kind.
pub enum Op<'a> {
    List {
        selector: Option<&'a str>,
        limit: u32,
    },
    Get {
        name: &'a str,
    },
}

/// A request for one kind: the namespace is None for all namespaces (or a cluster-scoped kind).
pub struct Request<'a> {
    pub kind: Kind,
    pub namespace: Option<&'a str>,
    pub op: Op<'a>,
    pub now: DateTime<Utc>,
}

/// The namespace's objects, or all namespaces' when none is given.
fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs `req` against the API type of its kind.
pub async fn run(client: &Client, req: Request<'_>) -> Result<String, ToolError> {
    let ns = req.namespace.filter(|_| req.kind.namespaced());
    let req = Request {
        namespace: ns,
        ..req
    };
    let c = client;
    match req.kind {
        Kind::Pods => read(scoped::<Pod>(c, ns), &req).await,
        Kind::Deployments => read(scoped::<Deployment>(c, ns), &req).await,
        Kind::StatefulSets => read(scoped::<StatefulSet>(c, ns), &req).await,
        Kind::DaemonSets => read(scoped::<DaemonSet>(c, ns), &req).await,
        Kind::Jobs => read(scoped::<Job>(c, ns), &req).await,
        Kind::CronJobs => read(scoped::<CronJob>(c, ns), &req).await,
        Kind::Services => read(scoped::<Service>(c, ns), &req).await,
        Kind::Ingresses => read(scoped::<Ingress>(c, ns), &req).await,
        Kind::PersistentVolumeClaims => read(scoped::<PersistentVolumeClaim>(c, ns), &req).await,
        Kind::Events => read(scoped::<Event>(c, ns), &req).await,
        Kind::ConfigMaps => read(scoped::<ConfigMap>(c, ns), &req).await,
        Kind::Nodes => read(Api::<Node>::all(c.clone()), &req).await,
        Kind::Namespaces => read(Api::<Namespace>::all(c.clone()), &req).await,
    }
}

async fn read<K>(api: Api<K>, req: &Request<'_>) -> Result<String, ToolError>
where
    K: Render + Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match req.op {
        Op::List { selector, limit } => list(api, req, selector, limit).await,
        Op::Get { name } if req.namespace.is_none() && req.kind.namespaced() => {
            find(api, req, name).await
        }
        Op::Get { name } => {
            let r = Read {
                verb: "get",
                resource: req.kind.plural(),
                singular: req.kind.singular(),
                namespace: req.namespace,
                name: Some(name),
            };
            let obj = api.get(name).await.map_err(|e| r.error(e))?;
            Ok(obj.describe(req.now))
        }
    }
}

async fn list<K>(
    api: Api<K>,
    req: &Request<'_>,
    selector: Option<&str>,
    limit: u32,
) -> Result<String, ToolError>
where
    K: Render + Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let r = Read {
        verb: "list",
        resource: req.kind.plural(),
        singular: req.kind.singular(),
        namespace: req.namespace,
        name: None,
    };
    let mut lp = ListParams::default().limit(limit);
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    let page = api.list(&lp).await.map_err(|e| r.error(e))?;
    if page.items.is_empty() {
        let place = req.namespace.map(|ns| format!(" in namespace {ns}"));
        let matching = selector.map(|s| format!(" matching {s}"));
        return Ok(format!(
            "no {}{}{}",
            req.kind.plural(),
            place.unwrap_or_default(),
            matching.unwrap_or_default()
        ));
    }
    let more = match (&page.metadata.continue_, page.metadata.remaining_item_count) {
        (Some(c), _) if c.is_empty() => More::No,
        (None, _) => More::No,
        (Some(_), Some(n)) if n > 0 => More::Count(n as u64),
        (Some(_), _) => More::Some,
    };
    Ok(table(&page.items, more, req.now))
}

/// A namespaced object named without its namespace: found by name in every namespace, as long
/// as the name is not ambiguous.
async fn find<K>(api: Api<K>, req: &Request<'_>, name: &str) -> Result<String, ToolError>
where
    K: Render + Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let r = Read {
        verb: "list",
        resource: req.kind.plural(),
        singular: req.kind.singular(),
        namespace: None,
        name: None,
    };
    let lp = ListParams::default()
        .fields(&format!("metadata.name={name}"))
        .limit(20);
    let found = api.list(&lp).await.map_err(|e| r.error(e))?.items;
    match found.as_slice() {
        [] => Err(ToolError::Failed(format!(
            "no {} {name} in any namespace",
            req.kind.singular()
        ))),
        [one] => Ok(one.describe(req.now)),
        many => {
            let namespaces: Vec<String> = many
                .iter()
                .filter_map(|o| o.meta().namespace.clone())
                .collect();
            Err(ToolError::BadArguments(format!(
                "{} {name} exists in namespaces {}; give `namespace`",
                req.kind.singular(),
                namespaces.join(", ")
            )))
        }
    }
}
