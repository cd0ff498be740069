//! What every reconcile shares: the client, Events, metrics and operator settings.

use std::sync::Arc;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use crate::consts::CONTROLLER_NAME;
use crate::crd::{Agent, Channel, Cron};
use crate::operator::metrics::Metrics;

pub struct Context {
    pub client: Client,
    /// Who the operator's Events say they come from.
    reporter: Reporter,
    /// Default gateway image (the operator's own).
    pub image: String,
    pub metrics: Arc<Metrics>,
    /// The operator's caches of Channels and Crons, once its watches run; without them (a
    /// single reconcile in a test) members are listed from the API server.
    pub members: std::sync::OnceLock<MemberCache>,
    /// Per Agent (by uid), the names of pruned kinds kept at its last successful prune.
    pub pruned: std::sync::Mutex<std::collections::HashMap<String, [Vec<String>; 5]>>,
    /// Per Agent or member (by uid) whose status was just written, the resource version it had
    /// before: until the watch brings the written version, the cached object is stale.
    status_written: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Agents, Channels and Crons as the operator's watches see them.
pub struct MemberCache {
    pub agents: Store<Agent>,
    pub channels: Store<Channel>,
    pub crons: Store<Cron>,
}

impl MemberCache {
    /// One Agent, if the cache has it.
    pub fn agent(&self, ns: &str, name: &str) -> Option<Arc<Agent>> {
        self.agents.get(&ObjectRef::new(name).within(ns))
    }
    /// The Channels that name `agent` in a namespace.
    pub fn channels(&self, ns: &str, agent: &str) -> Vec<Channel> {
        members(&self.channels, ns, |c| c.spec.agent_ref == agent)
    }
    /// The Crons that name `agent` in a namespace.
    pub fn crons(&self, ns: &str, agent: &str) -> Vec<Cron> {
        members(&self.crons, ns, |c| c.spec.agent_ref == agent)
    }
}

/// Clones only what is asked for: a namespace can hold hundreds of other Agents' members.
fn members<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    ns: &str,
    of_agent: impl Fn(&K) -> bool,
) -> Vec<K> {
    store
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(ns) && of_agent(o))
        .map(|o| (**o).clone())
        .collect()
}

impl Context {
    pub fn new(client: Client, image: String, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            reporter,
            client,
            image,
            metrics,
            members: std::sync::OnceLock::new(),
            pruned: std::sync::Mutex::default(),
            status_written: std::sync::Mutex::default(),
        }
    }

    /// Notes that the status of `obj`, as cached, was just written.
    pub fn wrote_status<K: kube::Resource>(&self, obj: &K) {
        if let (Some(uid), Some(version)) = (obj.meta().uid.clone(), obj.resource_version()) {
            self.status_written
                .lock()
                .expect("status written lock")
                .insert(uid, version);
        }
    }

    /// Whether `obj` is the cached copy from before this operator's last status write to it:
    /// deciding from it would write the same status again (with new timestamps). Forgets the
    /// write once a newer copy is seen.
    pub fn stale<K: kube::Resource>(&self, obj: &K) -> bool {
        let (Some(uid), Some(version)) = (obj.meta().uid.as_ref(), obj.resource_version()) else {
            return false;
        };
        let mut written = self.status_written.lock().expect("status written lock");
        match written.get(uid) {
            Some(before) if *before == version => true,
            Some(_) => {
                written.remove(uid);
                false
            }
            None => false,
        }
    }

    /// Publishes an Event about `obj`. Failing to record an event never fails a reconcile.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            // The Events API caps notes at 1 kB.
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        // A recorder per Event: kube's Recorder keeps every Event it published for six minutes
        // to fold repeats into a series, which held ~5 MiB at 1,000 Agents. Ours repeat only
        // when a status changes, and then each says something new.
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not record event");
        }
    }
}
