//! Commands already run, by the gateway's idempotency key (kept 5 minutes, 1000 at most, as
//! Clawdbot keeps its dedupe entries): a request sent again — the gateway restarted and handled
//! the same message again, asking for the same command — gets the first run's result instead of
//! running twice, after waiting for it when it is still running. Only runs are kept: a refusal
//! (approval required) is not, so the approved request that follows it runs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::protocol::frames::{ErrorShape, codes};
use crate::protocol::invoke::InvokeResult;

pub const KEEP: Duration = Duration::from_secs(5 * 60);
pub const MAX_ENTRIES: usize = 1000;

enum Slot {
    /// Told the result when the run ends.
    Running(watch::Receiver<Option<InvokeResult>>),
    Done {
        at: Instant,
        result: Box<InvokeResult>,
    },
}

struct Entry {
    /// What the key was first used for: the same key for another command is refused.
    what: String,
    slot: Slot,
}

#[derive(Default)]
pub struct Dedupe {
    entries: Mutex<HashMap<String, Entry>>,
}

/// What to do with a request that carries a key.
enum Plan {
    Run(watch::Sender<Option<InvokeResult>>),
    Wait(watch::Receiver<Option<InvokeResult>>),
    Done(InvokeResult),
    Reused,
}

impl Dedupe {
    /// Runs `work` for request `id` unless `key` was run already for the same `what` (then its
    /// result, under this request's id).
    pub async fn once(
        &self,
        key: Option<&str>,
        what: &str,
        id: &str,
        work: impl Future<Output = InvokeResult>,
    ) -> InvokeResult {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return work.await;
        };
        let plan = self.plan(key, what, Instant::now());
        let result = match plan {
            Plan::Done(r) => r,
            Plan::Reused => InvokeResult {
                id: id.into(),
                node_id: String::new(),
                ok: false,
                payload: None,
                payload_json: None,
                error: Some(ErrorShape::new(
                    codes::INVALID_REQUEST,
                    format!("idempotencyKey {key} was used for another command"),
                )),
            },
            Plan::Wait(mut rx) => {
                // The watch's guard must not live across an await.
                let first = rx
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|r| r.clone());
                match first {
                    Some(r) => r,
                    // The first run's task ended without a result (it panicked): run this one.
                    None => work.await,
                }
            }
            Plan::Run(tx) => {
                let r = work.await;
                self.finish(key, &r);
                let _ = tx.send(Some(r.clone()));
                r
            }
        };
        InvokeResult {
            id: id.into(),
            ..result
        }
    }

    fn plan(&self, key: &str, what: &str, now: Instant) -> Plan {
        let mut entries = self.entries.lock().expect("dedupe lock");
        entries.retain(|_, e| match &e.slot {
            Slot::Done { at, .. } => now.duration_since(*at) < KEEP,
            Slot::Running(_) => true,
        });
        if let Some(e) = entries.get(key) {
            if e.what != what {
                return Plan::Reused;
            }
            return match &e.slot {
                Slot::Running(rx) => Plan::Wait(rx.clone()),
                Slot::Done { result, .. } => Plan::Done((**result).clone()),
            };
        }
        if entries.len() >= MAX_ENTRIES
            && let Some(oldest) = entries
                .iter()
                .filter_map(|(k, e)| match e.slot {
                    Slot::Done { at, .. } => Some((at, k.clone())),
                    Slot::Running(_) => None,
                })
                .min()
                .map(|(_, k)| k)
        {
            entries.remove(&oldest);
        }
        let (tx, rx) = watch::channel(None);
        entries.insert(
            key.into(),
            Entry {
                what: what.into(),
                slot: Slot::Running(rx),
            },
        );
        Plan::Run(tx)
    }

    /// Keeps a run's result; forgets a refusal, so the request after it (approved) runs.
    fn finish(&self, key: &str, result: &InvokeResult) {
        let mut entries = self.entries.lock().expect("dedupe lock");
        if result.ok {
            if let Some(e) = entries.get_mut(key) {
                e.slot = Slot::Done {
                    at: Instant::now(),
                    result: Box::new(result.clone()),
                };
            }
        } else {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn result(id: &str, ok: bool) -> InvokeResult {
        InvokeResult {
            id: id.into(),
            node_id: "n".into(),
            ok,
            payload: None,
            payload_json: ok.then(|| "{\"exitCode\":0}".into()),
            error: None,
        }
    }

    #[tokio::test]
    async fn a_key_runs_once_and_later_requests_get_its_result_under_their_own_id() {
        let d = Arc::new(Dedupe::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let work = |id: &'static str| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                result(id, true)
            }
        };
        // The second arrives while the first runs: it waits for it.
        let (a, b) = tokio::join!(
            d.once(Some("k"), "ls", "1", work("1")),
            d.once(Some("k"), "ls", "2", work("2"))
        );
        let c = d.once(Some("k"), "ls", "3", work("3")).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            (a.id.as_str(), b.id.as_str(), c.id.as_str()),
            ("1", "2", "3")
        );
        assert_eq!(a.payload_json, c.payload_json);
        // Without a key, or with another, it runs.
        d.once(None, "ls", "4", work("4")).await;
        d.once(Some("k2"), "ls", "5", work("5")).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_not_kept_and_a_key_is_not_reused_for_another_command() {
        let d = Dedupe::default();
        let refused = d
            .once(Some("k"), "ls", "1", async { result("1", false) })
            .await;
        assert!(!refused.ok);
        let approved = d
            .once(Some("k"), "ls", "2", async { result("2", true) })
            .await;
        assert!(approved.ok, "the approved request after a refusal runs");
        let other = d
            .once(Some("k"), "rm -rf /", "3", async { panic!("must not run") })
            .await;
        assert!(!other.ok);
        assert!(
            other
                .error
                .unwrap()
                .message
                .contains("used for another command"),
            "a key is bound to its command"
        );
    }

    #[test]
    fn entries_expire_and_are_bounded() {
        let d = Dedupe::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            let Plan::Run(_) = d.plan(&format!("k{i}"), "ls", t0) else {
                panic!("new key")
            };
            d.finish(&format!("k{i}"), &result("x", true));
        }
        assert_eq!(d.entries.lock().unwrap().len(), MAX_ENTRIES);
        assert!(matches!(d.plan("k1009", "ls", t0), Plan::Done(_)));
        // Five minutes later the next request runs again.
        assert!(matches!(
            d.plan(
                "k1009",
                "ls",
                Instant::now() + KEEP + Duration::from_secs(1)
            ),
            Plan::Run(_)
        ));
    }
}
