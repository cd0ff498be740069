//! Immediate alerts between patrols: the gateway watches pods and nodes and tells the owner at
//! once about a crash loop, an OOM kill, a node NotReady or under pressure — once per object and
//! reason per cool-down — and again when the condition clears.

use std::collections::BTreeMap;
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
}

/// What is wrong with a pod right now. An OOM kill counts while it is within `recent`.
pub fn pod_conditions(p: &PodFacts, now: DateTime<Utc>, recent: TimeDelta) -> Vec<Active> {
    let mut out = Vec::new();
    for c in &p.containers {
        if c.waiting_reason.as_deref() == Some("CrashLoopBackOff") {
            out.push(Active {
                reason: "CrashLoopBackOff".into(),
                detail: format!(
                    "container {} keeps crashing ({} restarts)",
                    c.name, c.restarts
                ),
                action: format!(
                    "kubectl -n {} logs {} -c {} --previous",
                    p.namespace, p.name, c.name
                ),
                recovers: true,
            });
        }
        if c.last_terminated_reason.as_deref() == Some("OOMKilled")
            && c.last_terminated_at.is_some_and(|t| now - t <= recent)
        {
            out.push(Active {
                reason: "OOMKilled".into(),
                detail: format!("container {} ran out of memory and was killed", c.name),
                action: format!(
                    "kubectl -n {} describe pod {}; raise resources.limits.memory",
                    p.namespace, p.name
                ),
                recovers: false,
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
        });
    }
    for p in &n.pressures {
        out.push(Active {
            reason: p.clone(),
            detail: "the kubelet may start evicting pods".into(),
            action: format!("kubectl describe node {}", n.name),
            recovers: true,
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
    #[serde(skip)]
    last: Option<Active>,
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
#[derive(Default)]
pub struct Tracker {
    cool_down: TimeDelta,
    entries: BTreeMap<String, Entry>,
}

fn key(object: &str, reason: &str) -> String {
    format!("{object}|{reason}")
}

impl Tracker {
    pub fn new(cool_down: TimeDelta) -> Self {
        Self {
            cool_down,
            entries: BTreeMap::new(),
        }
    }

    fn cooled(&self, e: &Entry, now: DateTime<Utc>) -> bool {
        e.alerted_at.is_none_or(|t| now - t >= self.cool_down)
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
        // What cleared.
        let keys: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if current.contains(&k) {
                continue;
            }
            let e = self.entries.get_mut(&k).expect("listed");
            if e.active {
                e.active = false;
                let recovers = e.last.as_ref().is_none_or(|a| a.recovers);
                if e.announced && recovers {
                    out.push(Notice::Cleared {
                        object: object.to_string(),
                        reason: k[prefix.len()..].to_string(),
                        gone,
                    });
                }
                e.announced = false;
            }
            if gone || (!e.active && self.cooled_entry(&k, now)) {
                // Nothing left to remember once the cool-down is over.
                self.entries.remove(&k);
            }
        }
        // What is true now.
        for (a, k) in active.into_iter().zip(current) {
            let cooled = self.entries.get(&k).is_none_or(|e| self.cooled(e, now));
            let e = self.entries.entry(k).or_default();
            let fresh = !e.active;
            e.active = true;
            e.last = Some(a.clone());
            if (fresh || !e.announced) && cooled {
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

    fn cooled_entry(&self, k: &str, now: DateTime<Utc>) -> bool {
        self.entries.get(k).is_some_and(|e| self.cooled(e, now))
    }

    /// Conditions still true whose alert was held back by the cool-down, now due.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Notice> {
        let cool_down = self.cool_down;
        let mut out = Vec::new();
        for (k, e) in &mut self.entries {
            if e.active
                && !e.announced
                && e.alerted_at.is_none_or(|t| now - t >= cool_down)
                && let Some(a) = &e.last
            {
                e.alerted_at = Some(now);
                e.announced = true;
                out.push(Notice::Alert {
                    object: k.split('|').next().unwrap_or_default().to_string(),
                    active: a.clone(),
                });
            }
        }
        out
    }

    fn save(&self) -> BTreeMap<String, Entry> {
        self.entries.clone()
    }

    fn load(cool_down: TimeDelta, entries: BTreeMap<String, Entry>) -> Self {
        Self { cool_down, entries }
    }
}

/// A pod or node event from the watches.
enum Seen {
    Pod(Box<Pod>, bool),
    Node(Box<Node>, bool),
}

/// A watch of `api` as [`Seen`] values (`wrap(object, deleted)`); errors are logged and the
/// watch resumes with backoff.
fn events<K>(
    api: Api<K>,
    what: &'static str,
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
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "alerts: {what} watch failed; retrying");
                    None
                }
            }
        })
}

/// How often conditions held back by a cool-down are looked at again.
const TICK: std::time::Duration = std::time::Duration::from_secs(60);

/// Watches pods and nodes and hands each notice's text to `send`.
pub async fn watch<F, Fut>(
    client: Client,
    cool_down: TimeDelta,
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
    let mut tracker = Tracker::load(cool_down, saved);
    let pods = events(Api::<Pod>::all(client.clone()), "pod", Seen::Pod);
    let nodes = events(Api::<Node>::all(client), "node", Seen::Node);
    let mut seen = std::pin::pin!(futures::stream::select(pods, nodes));
    let mut tick = tokio::time::interval(TICK);
    loop {
        let notices = tokio::select! {
            Some(s) = seen.next() => {
                let now = Utc::now();
                match s {
                    Seen::Pod(p, gone) => {
                        let f = PodFacts::from(*p);
                        let object = format!("pod {}/{}", f.namespace, f.name);
                        let active = if gone { Vec::new() } else { pod_conditions(&f, now, cool_down) };
                        tracker.observe(&object, active, gone, now)
                    }
                    Seen::Node(n, gone) => {
                        let f = NodeFacts::from(*n);
                        let object = format!("node {}", f.name);
                        let active = if gone { Vec::new() } else { node_conditions(&f) };
                        tracker.observe(&object, active, gone, now)
                    }
                }
            }
            _ = tick.tick() => tracker.tick(Utc::now()),
        };
        if notices.is_empty() {
            continue;
        }
        if let Some(s) = &state
            && let Err(e) = s.write(STATE_FILE, &tracker.save())
        {
            tracing::warn!(error = %e, "alert state not saved");
        }
        for n in notices {
            tracing::info!(notice = ?n, "alert");
            send(n.text(cjk)).await;
        }
    }
}

/// The gateway's alert loop: notices go to the configured chat.
pub async fn run(gw: Arc<Gateway>, client: Client) {
    let Some(cfg) = gw.config.agent.alerts.clone() else {
        return;
    };
    let cool_down = crate::controller::agent::validate::parse_duration(&cfg.cool_down)
        .map(|s| TimeDelta::seconds(s as i64))
        .unwrap_or(TimeDelta::minutes(30));
    let cjk = super::agent::speaks_cjk(&gw.agent.config);
    tracing::info!(channel = %cfg.deliver.channel, cool_down = %cfg.cool_down, "alerts on");
    let state = Some(gw.state.clone());
    let gw2 = gw.clone();
    watch(client, cool_down, cjk, state, move |text| {
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

    #[test]
    fn one_alert_per_cool_down_then_recovery() {
        let mut tr = Tracker::new(TimeDelta::minutes(30));
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        // Still crash-looping: every pod update is not another alert.
        for m in 1..10 {
            assert!(tr.observe(POD, vec![crash()], false, t(m)).is_empty());
            assert!(tr.tick(t(m)).is_empty());
        }
        // It clears: the owner is told.
        let n = tr.observe(POD, vec![], false, t(12));
        assert_eq!(
            n,
            [Notice::Cleared {
                object: POD.into(),
                reason: "CrashLoopBackOff".into(),
                gone: false
            }]
        );
        assert_eq!(n[0].text(false), "✅ pod web/api: CrashLoopBackOff cleared");
    }

    #[test]
    fn flapping_within_the_cool_down_is_told_once_then_after_it() {
        let mut tr = Tracker::new(TimeDelta::minutes(30));
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        assert_eq!(kinds(&tr.observe(POD, vec![], false, t(5))), ["cleared"]);
        // Back within the cool-down: held back, and its clearing is not told either.
        assert!(tr.observe(POD, vec![crash()], false, t(10)).is_empty());
        assert!(tr.tick(t(20)).is_empty());
        // Still true when the cool-down ends: told then.
        let n = tr.tick(t(31));
        assert_eq!(kinds(&n), ["alert"]);
        assert!(
            n[0].text(true)
                .starts_with("🚨 告警 pod web/api：CrashLoopBackOff")
        );
        // Back after the cool-down: told at once.
        assert_eq!(kinds(&tr.observe(POD, vec![], false, t(40))), ["cleared"]);
        assert!(
            tr.observe(POD, vec![crash()], false, t(50)).is_empty(),
            "within 30m of t(31)"
        );
        assert_eq!(
            kinds(&tr.observe(POD, vec![], false, t(55))),
            Vec::<&str>::new()
        );
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(70))),
            ["alert"]
        );
    }

    #[test]
    fn reasons_and_objects_are_separate_and_oom_does_not_recover() {
        let mut tr = Tracker::new(TimeDelta::minutes(30));
        let oom = Active {
            reason: "OOMKilled".into(),
            detail: "x".into(),
            action: "y".into(),
            recovers: false,
        };
        let n = tr.observe(POD, vec![crash(), oom.clone()], false, t(0));
        assert_eq!(kinds(&n), ["alert", "alert"]);
        assert_eq!(
            kinds(&tr.observe("pod web/other", vec![crash()], false, t(1))),
            ["alert"]
        );
        // The OOM ages out: no "cleared" for it; the crash loop still runs.
        assert!(tr.observe(POD, vec![crash()], false, t(40)).is_empty());
        // The pod is deleted: its crash loop is over.
        let n = tr.observe(POD, vec![], true, t(41));
        assert_eq!(
            n[0].text(false),
            "✅ pod web/api: CrashLoopBackOff cleared (the object is gone)"
        );
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
