//! Immediate alerts between patrols: the gateway watches pods and nodes and tells the owner at
//! once about a crash loop, an OOM kill, a node NotReady or under pressure — once per object and
//! reason per cool-down — and again when the condition clears.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use super::Gateway;
use crate::patrol::cluster::facts::{NodeFacts, PodFacts};

/// The state file keeping cool-downs across restarts.
pub const STATE_FILE: &str = "alerts.json";

/// A condition that is true of an object now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Active {
    pub reason: String,
    pub detail: String,
    pub action: String,
    /// Whether clearing is news: a crash loop ending is, an OOM kill aging out is not.
    pub recovers: bool,
    /// For events (an OOM kill): when it happened, so that the next one is news of its own.
    pub episode: Option<DateTime<Utc>>,
}

/// What is wrong with a pod right now. An OOM kill counts while it is within `recent`.
pub fn pod_conditions(p: &PodFacts, now: DateTime<Utc>, recent: TimeDelta) -> Vec<Active> {
    let mut out = Vec::new();
    for c in &p.containers {
        if c.crash_looping() {
            out.push(Active {
                reason: "CrashLoopBackOff".into(),
                detail: format!(
                    "container {} keeps crashing ({} restarts)",
                    c.name, c.restarts
                ),
                action: p.previous_logs(c),
                recovers: true,
                episode: None,
            });
        }
        if let Some(killed) = c.oom_killed_within(now, recent) {
            out.push(Active {
                reason: "OOMKilled".into(),
                detail: format!("container {} ran out of memory and was killed", c.name),
                action: p.raise_memory(c),
                recovers: false,
                episode: Some(killed),
            });
        }
    }
    dedup(out)
}

/// What is wrong with a node right now.
pub fn node_conditions(n: &NodeFacts) -> Vec<Active> {
    let mut out = Vec::new();
    if n.ready != Some(true) {
        out.push(Active {
            reason: "NotReady".into(),
            detail: if n.ready_reason.is_empty() {
                "the node is not Ready".into()
            } else {
                format!("the node is not Ready ({})", n.ready_reason)
            },
            action: format!("kubectl describe node {}", n.name),
            recovers: true,
            episode: None,
        });
    }
    for p in &n.pressures {
        out.push(Active {
            reason: p.clone(),
            detail: "the kubelet may start evicting pods".into(),
            action: format!("kubectl describe node {}", n.name),
            recovers: true,
            episode: None,
        });
    }
    out
}

/// One reason per object, even when several containers share it.
fn dedup(mut v: Vec<Active>) -> Vec<Active> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|a| seen.insert(a.reason.clone()));
    v
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// When the last alert for it went out.
    alerted_at: Option<DateTime<Utc>>,
    /// Whether it is true now.
    active: bool,
    /// Whether the owner was told of the current episode (so clearing is told too).
    announced: bool,
    /// Since when a told condition has been false: its clearing is told once it stays false for
    /// `clear_after` (a crash-looping container is briefly running between its crashes).
    absent_since: Option<DateTime<Utc>>,
    /// The current episode of an event-like condition.
    episode: Option<DateTime<Utc>>,
    #[serde(skip)]
    last: Option<Active>,
}

/// The alert clock.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Quiet time per object and reason after an alert.
    pub cool_down: TimeDelta,
    /// How long a told condition must stay false before its clearing is told: longer than a
    /// crash loop's longest back-off (5 min).
    pub clear_after: TimeDelta,
    /// How often clearings and held-back alerts are looked at.
    pub tick: std::time::Duration,
}

impl Timing {
    pub fn new(cool_down: TimeDelta) -> Self {
        Self {
            cool_down,
            clear_after: TimeDelta::minutes(10),
            tick: std::time::Duration::from_secs(60),
        }
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Alert {
        object: String,
        active: Active,
    },
    Cleared {
        object: String,
        reason: String,
        gone: bool,
    },
}

impl Notice {
    pub fn text(&self, cjk: bool) -> String {
        match (self, cjk) {
            (Notice::Alert { object, active }, false) => format!(
                "🚨 {object}: {} — {}\n-> {}",
                active.reason, active.detail, active.action
            ),
            (Notice::Alert { object, active }, true) => format!(
                "🚨 告警 {object}：{} — {}\n-> {}",
                active.reason, active.detail, active.action
            ),
            (
                Notice::Cleared {
                    object,
                    reason,
                    gone,
                },
                false,
            ) => format!(
                "✅ {object}: {reason} cleared{}",
                if *gone { " (the object is gone)" } else { "" }
            ),
            (
                Notice::Cleared {
                    object,
                    reason,
                    gone,
                },
                true,
            ) => format!(
                "✅ 恢复 {object}：{reason} 已解除{}",
                if *gone { "（对象已删除）" } else { "" }
            ),
        }
    }
}

/// Decides what to tell, per object and reason, with a cool-down. Pure: the caller passes time.
pub struct Tracker {
    timing: Timing,
    entries: BTreeMap<String, Entry>,
}

fn key(object: &str, reason: &str) -> String {
    format!("{object}|{reason}")
}

impl Tracker {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            entries: BTreeMap::new(),
        }
    }

    fn cooled(&self, e: &Entry, now: DateTime<Utc>) -> bool {
        e.alerted_at
            .is_none_or(|t| now - t >= self.timing.cool_down)
    }

    /// `object` now has exactly the conditions `active` (none when it was deleted: `gone`).
    pub fn observe(
        &mut self,
        object: &str,
        active: Vec<Active>,
        gone: bool,
        now: DateTime<Utc>,
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        let prefix = format!("{object}|");
        let current: Vec<String> = active.iter().map(|a| key(object, &a.reason)).collect();
        let keys: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        // What is no longer true.
        for k in keys.into_iter().filter(|k| !current.contains(k)) {
            let e = self.entries.get_mut(&k).expect("listed");
            let told = e.announced && e.last.as_ref().is_none_or(|a| a.recovers);
            if gone {
                if told && (e.active || e.absent_since.is_some()) {
                    out.push(Notice::Cleared {
                        object: object.to_string(),
                        reason: k[prefix.len()..].to_string(),
                        gone: true,
                    });
                }
                self.entries.remove(&k);
            } else if e.active {
                e.active = false;
                if told {
                    e.absent_since = Some(now);
                } else {
                    e.announced = false;
                }
            }
        }
        // What is true now.
        for (a, k) in active.into_iter().zip(current) {
            let cooled = self.entries.get(&k).is_none_or(|e| self.cooled(e, now));
            let e = self.entries.entry(k).or_default();
            if e.absent_since.take().is_some() {
                // Back before its clearing was told: the same episode goes on.
                e.active = true;
                e.last = Some(a);
                continue;
            }
            let new_episode = a.episode.is_some() && a.episode != e.episode;
            if !e.active || new_episode {
                e.announced = false;
            }
            e.active = true;
            e.episode = a.episode;
            e.last = Some(a.clone());
            if !e.announced && cooled {
                e.alerted_at = Some(now);
                e.announced = true;
                out.push(Notice::Alert {
                    object: object.to_string(),
                    active: a,
                });
            }
        }
        out
    }

    /// Clearings that held for `clear_after`, alerts held back by the cool-down that are now
    /// due, and forgetting what cleared and cooled down.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Notice> {
        let Timing {
            cool_down,
            clear_after,
            ..
        } = self.timing;
        let mut out = Vec::new();
        for (k, e) in &mut self.entries {
            let (object, reason) = k.split_once('|').unwrap_or((k, ""));
            if e.absent_since.is_some_and(|t| now - t >= clear_after) {
                e.absent_since = None;
                e.announced = false;
                out.push(Notice::Cleared {
                    object: object.to_string(),
                    reason: reason.to_string(),
                    gone: false,
                });
            }
            if e.active
                && !e.announced
                && e.alerted_at.is_none_or(|t| now - t >= cool_down)
                && let Some(a) = &e.last
            {
                e.alerted_at = Some(now);
                e.announced = true;
                out.push(Notice::Alert {
                    object: object.to_string(),
                    active: a.clone(),
                });
            }
        }
        self.entries.retain(|_, e| {
            e.active
                || e.absent_since.is_some()
                || e.alerted_at.is_some_and(|t| now - t < cool_down)
        });
        out
    }

    /// Objects of a kind (`pod `, `node `) this tracker remembers.
    pub fn objects(&self, kind: &str) -> BTreeSet<String> {
        self.entries
            .keys()
            .filter(|k| k.starts_with(kind))
            .filter_map(|k| k.split_once('|').map(|(o, _)| o.to_string()))
            .collect()
    }

    fn save(&self) -> BTreeMap<String, Entry> {
        self.entries.clone()
    }

    fn load(timing: Timing, entries: BTreeMap<String, Entry>) -> Self {
        Self { timing, entries }
    }
}

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
    state: Option<super::state::StateDir>,
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
                        send_all(&tracker, &state, &send, cjk, notices).await;
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
        send_all(&tracker, &state, &send, cjk, notices).await;
    }
}

/// Saves the tracker (so cool-downs survive a restart) and sends the notices.
async fn send_all<F, Fut>(
    tracker: &Tracker,
    state: &Option<super::state::StateDir>,
    send: &F,
    cjk: bool,
    notices: Vec<Notice>,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
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

/// The gateway's alert loop: notices go to the configured chat.
pub async fn run(gw: Arc<Gateway>, client: Client) {
    let Some(cfg) = gw.config.agent.alerts.clone() else {
        return;
    };
    let cool_down = crate::crd::common::parse_duration(&cfg.cool_down)
        .and_then(|s| TimeDelta::try_seconds(i64::try_from(s).ok()?))
        .unwrap_or(TimeDelta::minutes(30));
    let cjk = super::agent::speaks_cjk(&gw.agent.config);
    tracing::info!(channel = %cfg.deliver.channel, cool_down = %cfg.cool_down, "alerts on");
    let state = Some(gw.state.clone());
    let gw2 = gw.clone();
    watch(client, Timing::new(cool_down), cjk, state, move |text| {
        let (gw, cfg) = (gw2.clone(), cfg.clone());
        async move {
            match gw
                .deliver(&cfg.deliver.channel, &cfg.deliver.to, &text)
                .await
            {
                Ok(true) => {}
                Ok(false) => tracing::warn!("alert not delivered"),
                Err(why) => tracing::warn!(%why, "alert not delivered"),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        "2026-11-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(min)
    }

    fn crash() -> Active {
        Active {
            reason: "CrashLoopBackOff".into(),
            detail: "container main keeps crashing (5 restarts)".into(),
            action: "kubectl -n web logs api -c main --previous".into(),
            recovers: true,
            episode: None,
        }
    }

    const POD: &str = "pod web/api";

    fn kinds(n: &[Notice]) -> Vec<&'static str> {
        n.iter()
            .map(|n| match n {
                Notice::Alert { .. } => "alert",
                Notice::Cleared { .. } => "cleared",
            })
            .collect()
    }

    fn tracker() -> Tracker {
        Tracker::new(Timing::new(TimeDelta::minutes(30)))
    }

    #[test]
    fn one_alert_per_cool_down_then_recovery_once_it_holds() {
        let mut tr = tracker();
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        // Still crash-looping: every pod update is not another alert.
        for m in 1..10 {
            assert!(tr.observe(POD, vec![crash()], false, t(m)).is_empty());
            assert!(tr.tick(t(m)).is_empty());
        }
        // It clears; the owner is told once it has stayed clear for 10 minutes.
        assert!(tr.observe(POD, vec![], false, t(12)).is_empty());
        assert!(tr.tick(t(20)).is_empty());
        let n = tr.tick(t(22));
        assert_eq!(
            n,
            [Notice::Cleared {
                object: POD.into(),
                reason: "CrashLoopBackOff".into(),
                gone: false
            }]
        );
        assert_eq!(n[0].text(false), "✅ pod web/api: CrashLoopBackOff cleared");
        assert!(tr.tick(t(40)).is_empty());
    }

    #[test]
    fn a_crash_loop_running_between_crashes_is_not_cleared() {
        let mut tr = tracker();
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        for m in (1..60).step_by(5) {
            // Running for a few minutes, then back in back-off.
            assert!(tr.observe(POD, vec![], false, t(m)).is_empty());
            assert!(tr.tick(t(m + 2)).is_empty());
            assert!(tr.observe(POD, vec![crash()], false, t(m + 4)).is_empty());
            assert!(
                tr.tick(t(m + 4)).is_empty(),
                "no second alert, no false clearing"
            );
        }
    }

    #[test]
    fn a_flap_after_clearing_within_the_cool_down_is_held_back() {
        let mut tr = tracker();
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        assert!(tr.observe(POD, vec![], false, t(5)).is_empty());
        assert_eq!(kinds(&tr.tick(t(16))), ["cleared"]);
        // Back within 30 minutes of the alert: held back until the cool-down ends.
        assert!(tr.observe(POD, vec![crash()], false, t(20)).is_empty());
        assert!(tr.tick(t(25)).is_empty());
        let n = tr.tick(t(31));
        assert_eq!(kinds(&n), ["alert"]);
        assert!(
            n[0].text(true)
                .starts_with("🚨 告警 pod web/api：CrashLoopBackOff")
        );
        // Cleared and back after the cool-down: told at once.
        assert!(tr.observe(POD, vec![], false, t(40)).is_empty());
        assert_eq!(kinds(&tr.tick(t(51))), ["cleared"]);
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(70))),
            ["alert"]
        );
    }

    #[test]
    fn every_oom_kill_is_news_and_none_recovers() {
        let mut tr = tracker();
        let oom = |at: i64| Active {
            reason: "OOMKilled".into(),
            detail: "x".into(),
            action: "y".into(),
            recovers: false,
            episode: Some(t(at)),
        };
        let n = tr.observe(POD, vec![crash(), oom(0)], false, t(0));
        assert_eq!(kinds(&n), ["alert", "alert"]);
        assert_eq!(
            kinds(&tr.observe("pod web/other", vec![crash()], false, t(1))),
            ["alert"]
        );
        // The same kill seen again is not news; it ages out without a "cleared".
        assert!(
            tr.observe(POD, vec![crash(), oom(0)], false, t(10))
                .is_empty()
        );
        assert!(tr.observe(POD, vec![crash()], false, t(40)).is_empty());
        assert!(tr.tick(t(60)).is_empty());
        // A new kill days later is.
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash(), oom(3000)], false, t(3000))),
            ["alert"]
        );
        // A pod that stayed quiet since its kill, killed again after the cool-down: told too.
        assert!(
            tr.observe(POD, vec![crash(), oom(3000)], false, t(3010))
                .is_empty()
        );
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash(), oom(3100)], false, t(3100))),
            ["alert"]
        );
        // The pod is deleted: its crash loop is over at once.
        let n = tr.observe(POD, vec![], true, t(3101));
        assert_eq!(
            n[0].text(false),
            "✅ pod web/api: CrashLoopBackOff cleared (the object is gone)"
        );
        assert_eq!(tr.objects("pod "), ["pod web/other".to_string()].into());
    }

    #[test]
    fn conditions_of_pods_and_nodes() {
        use crate::patrol::cluster::facts::ContainerFacts;
        let now = t(0);
        let container = |waiting: Option<&str>, last: Option<&str>, ago: i64| ContainerFacts {
            name: "main".into(),
            waiting_reason: waiting.map(String::from),
            waiting_message: None,
            last_terminated_reason: last.map(String::from),
            last_terminated_at: Some(now - TimeDelta::minutes(ago)),
            restarts: 4,
        };
        let mut pod = PodFacts {
            namespace: "web".into(),
            name: "api".into(),
            node: Some("n1".into()),
            phase: "Running".into(),
            created: None,
            unschedulable: None,
            cpu_request_milli: 0,
            memory_request_bytes: 0,
            containers: vec![container(Some("CrashLoopBackOff"), Some("OOMKilled"), 5)],
        };
        let reasons: Vec<String> = pod_conditions(&pod, now, TimeDelta::minutes(30))
            .into_iter()
            .map(|a| a.reason)
            .collect();
        assert_eq!(reasons, ["CrashLoopBackOff", "OOMKilled"]);
        pod.containers = vec![container(None, Some("OOMKilled"), 45)];
        assert!(
            pod_conditions(&pod, now, TimeDelta::minutes(30)).is_empty(),
            "an old OOM kill is not news"
        );
        let node = NodeFacts {
            name: "n2".into(),
            ready: Some(false),
            ready_reason: "NodeStatusUnknown".into(),
            ready_since: None,
            pressures: vec!["DiskPressure".into()],
            unschedulable: false,
            cpu_milli: 0,
            memory_bytes: 0,
        };
        let a = node_conditions(&node);
        assert_eq!(a[0].detail, "the node is not Ready (NodeStatusUnknown)");
        assert_eq!(a[1].reason, "DiskPressure");
    }
}
