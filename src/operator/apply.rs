//! Apply: server-side apply with one field manager, but only when the object differs from what
//! was last applied (a hash annotation), so an unchanged Agent causes no write at all; objects
//! created once; and pruning of what the spec no longer asks for. Reads are planned first and
//! made together; writes follow one at a time.

use std::collections::BTreeSet;
use std::fmt::Debug;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::consts::{ANNOTATION_APPLIED_HASH, FIELD_MANAGER};
use crate::util::hex;

#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name}: {source}")]
pub struct ApplyError {
    pub action: &'static str,
    pub kind: String,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

/// What one apply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Applied(String),
    Created(String),
    Deleted(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Applied(s) => write!(f, "applied {s}"),
            Change::Created(s) => write!(f, "created {s}"),
            Change::Deleted(s) => write!(f, "deleted {s}"),
        }
    }
}

pub trait Object:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<K> Object for K where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

fn describe<K: Object>(name: &str) -> String {
    format!("{} {name}", K::kind(&()))
}

fn err<K: Object>(action: &'static str, name: &str) -> impl FnOnce(kube::Error) -> ApplyError {
    let (kind, name) = (K::kind(&()).to_string(), name.to_string());
    move |source| ApplyError {
        action,
        kind,
        name,
        source,
    }
}

/// Hash of an object as we would apply it.
pub fn applied_hash<K: Serialize>(obj: &K) -> String {
    hex(&Sha256::digest(
        serde_json::to_vec(obj).expect("objects serialize"),
    ))
}

/// A write decided on but not made yet. A future does nothing until it is awaited, so a
/// reconcile reads everything it compares at once, then makes its writes one by one, in order.
pub type Write = BoxFuture<'static, Result<Option<Change>, ApplyError>>;

/// Reads what [`plan_apply`] and the other `plan_` functions compare, giving the writes needed.
pub type Plan = BoxFuture<'static, Result<Vec<Write>, ApplyError>>;

/// The write that applies `obj`, unless the live object carries the same applied hash; with
/// `create` false, only over an existing object (a change to something already running, never
/// a first creation).
pub fn plan_apply<K: Object>(api: Api<K>, mut obj: K, create: bool) -> Plan {
    Box::pin(async move {
        let hash = applied_hash(&obj);
        let name = obj.name_any();
        obj.annotations_mut()
            .insert(ANNOTATION_APPLIED_HASH.into(), hash.clone());
        // Metadata only: the applied hash is all that is compared.
        let live = api
            .get_metadata_opt(&name)
            .await
            .map_err(err::<K>("reading", &name))?;
        if live
            .as_ref()
            .and_then(|l| l.annotations().get(ANNOTATION_APPLIED_HASH))
            == Some(&hash)
            || (live.is_none() && !create)
        {
            return Ok(Vec::new());
        }
        let write: Write = Box::pin(async move {
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .map_err(err::<K>("applying", &name))?;
            Ok(Some(Change::Applied(describe::<K>(&name))))
        });
        Ok(vec![write])
    })
}

/// The write that creates `obj` if no object of that name exists; an existing one is left
/// untouched.
pub fn plan_create_once<K: Object>(api: Api<K>, obj: K) -> Plan {
    Box::pin(async move {
        let name = obj.name_any();
        if api
            .get_metadata_opt(&name)
            .await
            .map_err(err::<K>("reading", &name))?
            .is_some()
        {
            return Ok(Vec::new());
        }
        Ok(vec![plan_create(api, obj)])
    })
}

/// The write that creates `obj`, with nothing to read first.
pub fn plan_create<K: Object>(api: Api<K>, obj: K) -> Write {
    Box::pin(async move { create(&api, &obj).await })
}

/// Reads every plan at once (at most [`READS_IN_FLIGHT`] requests), then makes the writes one
/// at a time in the order of the plans, stopping at the first failure.
pub async fn run(plans: Vec<Plan>) -> Result<Vec<Change>, ApplyError> {
    let writes: Vec<Vec<Write>> = futures::stream::iter(plans)
        .buffered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut changes = Vec::new();
    for write in writes.into_iter().flatten() {
        changes.extend(write.await?);
    }
    Ok(changes)
}

/// Reads one reconcile has in flight at once: enough to overlap an Agent's twenty-odd reads,
/// few enough that `--concurrency` reconciles stay a modest load on the API server.
pub const READS_IN_FLIGHT: usize = 4;

/// Creates `obj`; a concurrent creation (409) counts as nothing done.
pub async fn create<K: Object>(api: &Api<K>, obj: &K) -> Result<Option<Change>, ApplyError> {
    let name = obj.name_any();
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.create(&pp, obj).await {
        Ok(_) => Ok(Some(Change::Created(describe::<K>(&name)))),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(err::<K>("creating", &name)(e)),
    }
}

/// The writes that delete the objects matching `selector` whose names are not in `keep`.
pub fn plan_prune<K: Object>(api: Api<K>, selector: String, keep: BTreeSet<String>) -> Plan {
    Box::pin(async move {
        let live = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(err::<K>("listing", &selector))?;
        Ok(live
            .items
            .into_iter()
            .map(|item| item.name_any())
            .filter(|name| !keep.contains(name))
            .map(|name| plan_delete(api.clone(), name))
            .collect())
    })
}

/// The write that deletes one object if it exists, read first so that an absent object costs
/// no write.
pub fn plan_delete_if_present<K: Object>(api: Api<K>, name: String) -> Plan {
    Box::pin(async move {
        if api
            .get_metadata_opt(&name)
            .await
            .map_err(err::<K>("reading", &name))?
            .is_none()
        {
            return Ok(Vec::new());
        }
        Ok(vec![plan_delete(api, name)])
    })
}

fn plan_delete<K: Object>(api: Api<K>, name: String) -> Write {
    Box::pin(async move { delete(&api, &name).await })
}

/// Deletes one object if it exists.
pub async fn delete<K: Object>(api: &Api<K>, name: &str) -> Result<Option<Change>, ApplyError> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(Some(Change::Deleted(describe::<K>(name)))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(err::<K>("deleting", name)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A plan that reads for `read_ms`, then (unless `fail`) plans one write; both are logged.
    fn plan(log: &Arc<Mutex<Vec<String>>>, i: usize, read_ms: u64, fail: bool) -> Plan {
        let log = log.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(read_ms)).await;
            log.lock().unwrap().push(format!("read {i}"));
            if fail {
                return Err(ApplyError {
                    action: "reading",
                    kind: "ConfigMap".into(),
                    name: format!("cm-{i}"),
                    source: kube::Error::LinesCodecMaxLineLengthExceeded,
                });
            }
            let write: Write = Box::pin(async move {
                log.lock().unwrap().push(format!("write {i}"));
                Ok(Some(Change::Applied(format!("ConfigMap cm-{i}"))))
            });
            Ok(vec![write])
        })
    }

    #[tokio::test(start_paused = true)]
    async fn reads_overlap_and_writes_follow_in_plan_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        // The later the plan, the sooner its read ends.
        let n = READS_IN_FLIGHT;
        let plans = (0..n)
            .map(|i| plan(&log, i, 10 * (n - i) as u64, false))
            .collect();
        let changes = run(plans).await.expect("no failure");
        assert!(
            start.elapsed() < Duration::from_millis(10 * n as u64 + 5),
            "{n} reads of up to {} ms took {:?}: they did not overlap",
            10 * n,
            start.elapsed()
        );
        let log = log.lock().unwrap().clone();
        let writes: Vec<&String> = log.iter().filter(|l| l.starts_with("write")).collect();
        let in_order: Vec<String> = (0..n).map(|i| format!("write {i}")).collect();
        assert_eq!(writes, in_order.iter().collect::<Vec<_>>(), "{log:?}");
        let first_write = log.iter().position(|l| l.starts_with("write")).unwrap();
        assert_eq!(
            first_write, n,
            "every read comes before the first write: {log:?}"
        );
        assert_eq!(changes.len(), n);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_makes_no_write_at_all() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let plans = vec![
            plan(&log, 0, 1, false),
            plan(&log, 1, 5, true),
            plan(&log, 2, 1, false),
        ];
        let e = run(plans).await.expect_err("the read of cm-1 fails");
        assert_eq!(e.name, "cm-1");
        assert!(
            !log.lock().unwrap().iter().any(|l| l.starts_with("write")),
            "{:?}",
            log.lock().unwrap()
        );
    }
}
