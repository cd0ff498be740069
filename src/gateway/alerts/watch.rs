//! The watch loop: pod and node events from Kubernetes become conditions, the tracker decides
//! what is news, and each notice is handed to the caller's `send`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::board::Board;
use super::conditions::{node_conditions, pod_conditions};
use super::notice::Notice;
use super::tracker::{Entry, Timing, Tracker};
use crate::patrol::cluster::facts::{NodeFacts, PodFacts};
use crate::util::state_dir::StateDir;

/// The state file keeping cool-downs across restarts.
pub const STATE_FILE: &str = "alerts.json";

/// A pod or node event from the watches.
enum Seen {
    Pod(Box<Pod>, bool),
    Node(Box<Node>, bool),
    /// A (re)list of a kind (`pod `, `node `) begins (false) or ends (true): what it did not
    /// list was deleted while the watch was down.
    Relist(&'static str, bool),
}

/// A watch of `api` as [`Seen`] values (`wrap(object, deleted)`); errors are logged and the
/// watch resumes with backoff.
fn events<K>(
    api: Api<K>,
    what: &'static str,
    kind: &'static str,
    wrap: fn(Box<K>, bool) -> Seen,
) -> impl futures::Stream<Item = Seen>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |e| async move {
            match e {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    Some(wrap(Box::new(o), false))
                }
                Ok(watcher::Event::Delete(o)) => Some(wrap(Box::new(o), true)),
                Ok(watcher::Event::Init) => Some(Seen::Relist(kind, false)),
                Ok(watcher::Event::InitDone) => Some(Seen::Relist(kind, true)),
                Err(e) => {
                    tracing::warn!(error = %e, "alerts: {what} watch failed; retrying");
                    None
                }
            }
        })
}

/// Watches pods and nodes and hands each notice's text to `send`.
pub async fn watch<F, Fut>(
    client: Client,
    timing: Timing,
    cjk: bool,
    state: Option<StateDir>,
    board: Arc<Board>,
    send: F,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let saved = state
        .as_ref()
        .and_then(|s| s.read::<BTreeMap<String, Entry>>(STATE_FILE).ok().flatten())
        .unwrap_or_default();
    let mut tracker = Tracker::load(timing, saved);
    board.sync(tracker.told());
    let pods = events(Api::<Pod>::all(client.clone()), "pod", POD, Seen::Pod);
    let nodes = events(Api::<Node>::all(client), "node", NODE, Seen::Node);
    let mut seen = std::pin::pin!(futures::stream::select(pods, nodes));
    let mut tick = tokio::time::interval(timing.tick);
    let mut relisted: std::collections::HashMap<&'static str, BTreeSet<String>> =
        Default::default();
    loop {
        let notices = tokio::select! {
            Some(s) = seen.next() => {
                let now = Utc::now();
                let (object, active, gone) = match s {
                    Seen::Pod(p, gone) => {
                        let f = PodFacts::from(*p);
                        let active = if gone { Vec::new() } else { pod_conditions(&f, now, timing.cool_down) };
                        (format!("{POD}{}/{}", f.namespace, f.name), active, gone)
                    }
                    Seen::Node(n, gone) => {
                        let f = NodeFacts::from(*n);
                        let active = if gone { Vec::new() } else { node_conditions(&f) };
                        (format!("{NODE}{}", f.name), active, gone)
                    }
                    Seen::Relist(kind, false) => {
                        relisted.insert(kind, BTreeSet::new());
                        continue;
                    }
                    Seen::Relist(kind, true) => {
                        let listed = relisted.remove(kind).unwrap_or_default();
                        let vanished: Vec<String> = tracker.objects(kind).difference(&listed).cloned().collect();
                        let mut notices = Vec::new();
                        for object in vanished {
                            notices.extend(tracker.observe(&object, Vec::new(), true, now));
                        }
                        send_all(&tracker, &state, &board, &send, cjk, notices).await;
                        continue;
                    }
                };
                for (kind, listed) in relisted.iter_mut() {
                    if object.starts_with(kind) {
                        listed.insert(object.clone());
                    }
                }
                tracker.observe(&object, active, gone, now)
            }
            _ = tick.tick() => tracker.tick(Utc::now()),
        };
        send_all(&tracker, &state, &board, &send, cjk, notices).await;
    }
}

/// Saves the tracker (so cool-downs survive a restart) and sends the notices.
async fn send_all<F, Fut>(
    tracker: &Tracker,
    state: &Option<StateDir>,
    board: &Board,
    send: &F,
    cjk: bool,
    notices: Vec<Notice>,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let now = Utc::now();
    for n in &notices {
        board.record(n, now);
    }
    board.sync(tracker.told());
    if notices.is_empty() {
        return;
    }
    if let Some(s) = state
        && let Err(e) = s.write(STATE_FILE, &tracker.save())
    {
        tracing::warn!(error = %e, "alert state not saved");
    }
    for n in notices {
        tracing::info!(notice = ?n, "alert");
        send(n.text(cjk)).await;
    }
}

const POD: &str = "pod ";
const NODE: &str = "node ";
