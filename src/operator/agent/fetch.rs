//! Fetch: read from the cluster what an Agent's plan is assembled from — its members (from the
//! operator's cache when it has one) and the Secrets they reference.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::crd::{Agent, Channel, Cron};
use crate::operator::context::MemberCache;
use crate::plan::resolve::{Resolved, assemble, members_of, secret_uses};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("listing {kind} in namespace {namespace}: {source}")]
    List {
        kind: &'static str,
        namespace: String,
        source: kube::Error,
    },
    #[error("reading Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

/// Reads the Agent's members (from `cache` when the operator has one) and referenced Secrets
/// from the cluster. Only reads.
pub async fn resolve(
    client: &Client,
    cache: Option<&MemberCache>,
    agent: Arc<Agent>,
) -> Result<Resolved, ResolveError> {
    let ns = agent.namespace().unwrap_or_default();
    let list_err = |kind| {
        let namespace = ns.clone();
        move |source| ResolveError::List {
            kind,
            namespace,
            source,
        }
    };
    let (channels, crons) = match cache {
        Some(c) => {
            let name = agent.name_any();
            (c.channels(&ns, &name), c.crons(&ns, &name))
        }
        None => (
            Api::<Channel>::namespaced(client.clone(), &ns)
                .list(&ListParams::default())
                .await
                .map_err(list_err("Channels"))?
                .items,
            Api::<Cron>::namespaced(client.clone(), &ns)
                .list(&ListParams::default())
                .await
                .map_err(list_err("Crons"))?
                .items,
        ),
    };
    let secrets_api = Api::<Secret>::namespaced(client.clone(), &ns);
    // Fetch each distinct Secret once; `assemble` then looks keys up without I/O.
    let mut fetched = BTreeMap::new();
    for u in secret_uses(
        &agent,
        &members_of(&agent, channels.iter().cloned(), |c| &c.spec.agent_ref),
    ) {
        if fetched.contains_key(&u.reference.name) {
            continue;
        }
        let s = secrets_api
            .get_opt(&u.reference.name)
            .await
            .map_err(|source| ResolveError::ReadSecret {
                namespace: ns.clone(),
                name: u.reference.name.clone(),
                source,
            })?;
        fetched.insert(u.reference.name.clone(), s);
    }
    Ok(assemble(agent, channels, crons, |name| {
        fetched.get(name).cloned().flatten()
    }))
}
