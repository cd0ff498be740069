//! Apply: server-side apply with one field manager, but only when the object differs from what
//! was last applied (a hash annotation), so an unchanged Agent causes no write at all; objects
//! created once; and pruning of what the spec no longer asks for.

use std::collections::BTreeSet;
use std::fmt::Debug;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::consts::{ANNOTATION_APPLIED_HASH, FIELD_MANAGER};
use crate::secrets::hex;

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

/// Applies `obj` unless the live object carries the same applied hash. Returns the change made.
pub async fn apply<K: Object>(api: &Api<K>, obj: K) -> Result<Option<Change>, ApplyError> {
    apply_with(api, obj, true).await
}

/// Like [`apply`], but only over an existing object: a change to something already running,
/// never a first creation.
pub async fn apply_existing<K: Object>(api: &Api<K>, obj: K) -> Result<Option<Change>, ApplyError> {
    apply_with(api, obj, false).await
}

async fn apply_with<K: Object>(
    api: &Api<K>,
    mut obj: K,
    create: bool,
) -> Result<Option<Change>, ApplyError> {
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
        return Ok(None);
    }
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await
    .map_err(err::<K>("applying", &name))?;
    Ok(Some(Change::Applied(describe::<K>(&name))))
}

/// Creates `obj` if no object of that name exists; an existing one is left untouched.
pub async fn create_once<K: Object>(api: &Api<K>, obj: &K) -> Result<Option<Change>, ApplyError> {
    let name = obj.name_any();
    if api
        .get_metadata_opt(&name)
        .await
        .map_err(err::<K>("reading", &name))?
        .is_some()
    {
        return Ok(None);
    }
    create(api, obj).await
}

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

/// Deletes the objects matching `selector` whose names are not in `keep`.
pub async fn prune<K: Object>(
    api: &Api<K>,
    selector: &str,
    keep: &BTreeSet<String>,
) -> Result<Vec<Change>, ApplyError> {
    let live = api
        .list_metadata(&ListParams::default().labels(selector))
        .await
        .map_err(err::<K>("listing", selector))?;
    let mut changes = Vec::new();
    for item in live.items {
        let name = item.name_any();
        if keep.contains(&name) {
            continue;
        }
        delete(api, &name).await?;
        changes.push(Change::Deleted(describe::<K>(&name)));
    }
    Ok(changes)
}

/// Deletes one object if it exists, reading first so that an absent object costs no write.
pub async fn delete_if_present<K: Object>(
    api: &Api<K>,
    name: &str,
) -> Result<Option<Change>, ApplyError> {
    if api
        .get_metadata_opt(name)
        .await
        .map_err(err::<K>("reading", name))?
        .is_none()
    {
        return Ok(None);
    }
    delete(api, name).await
}

/// Deletes one object if it exists.
pub async fn delete<K: Object>(api: &Api<K>, name: &str) -> Result<Option<Change>, ApplyError> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(Some(Change::Deleted(describe::<K>(name)))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(err::<K>("deleting", name)(e)),
    }
}
