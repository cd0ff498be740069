//! The fault matrix's operator row (issue 14, README "Reliability"): the real `clawops operator`
//! converging Agents against the fake API server over HTTP while the API server goes away for
//! 60 s, the operator is killed with SIGKILL, or every watch expires with 410. Afterwards every
//! object is there once (nothing orphaned or duplicated, the generated gateway token kept) and
//! the writes are those of a clean run plus the retries. Each case prints one line of figures;
//! the 200-Agent cases are slow and run in `make reliability`, a 20-Agent kill in `make test`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clawops::consts::LABEL_INSTANCE;
use serde_json::Value;

use super::operator_scale::scale::{self, Cluster, Operator, Options, Tally};
use crate::support::fake_api::{FakeApi, Recorded, path_of};
use crate::support::process;

/// Requests stop for this long once the operator has done what the last writes trigger (a
/// reconcile after the 1 s debounce, reading only).
const QUIET: Duration = Duration::from_secs(3);
/// How long the API server is away in the outage case (the figure).
const OUTAGE: Duration = Duration::from_secs(60);
/// Every `DELETE_EVERY`th Agent is deleted after convergence, to check what it leaves behind.
const DELETE_EVERY: usize = 4;

/// The size, with the scale bench's defaults: 5 ms per write, four reconciles at once,
/// so converging takes long enough (about 10 s) to fault in the middle of it.
fn full() -> Options {
    Options {
        agents: 200,
        per_namespace: 100,
        write_latency: Duration::from_millis(5),
        concurrency: clawops::operator::DEFAULT_CONCURRENCY,
        steady: Duration::ZERO,
        binary: env!("CARGO_BIN_EXE_clawops").into(),
        timeout: Duration::from_secs(180),
    }
}

/// Small enough for `make test`.
fn quick() -> Options {
    Options {
        agents: 20,
        per_namespace: 10,
        write_latency: Duration::from_millis(2),
        timeout: Duration::from_secs(60),
        ..full()
    }
}

/// What a clean run of the same size does: the yardstick of every fault.
struct Baseline {
    writes: Tally,
    /// The generated objects' paths: names are deterministic, so a faulted run must end with
    /// exactly these.
    objects: BTreeSet<String>,
    took: Duration,
}

/// Clean runs by size, measured once per test process. The lock also runs these tests one at
/// a time: two 200-Agent operators on two cores would time each other.
static BASELINES: tokio::sync::Mutex<BTreeMap<usize, Baseline>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

/// Runs a clean convergence unless one of this size was measured already.
async fn baseline<'a>(cache: &'a mut BTreeMap<usize, Baseline>, o: &Options) -> &'a Baseline {
    if let std::collections::btree_map::Entry::Vacant(e) = cache.entry(o.agents) {
        let mut run = Run::start(o, "clean").await;
        let took = run.converge().await;
        run.settle().await;
        e.insert(Baseline {
            writes: run.writes(),
            objects: run.cluster.generated().into_iter().collect(),
            took,
        });
    }
    &cache[&o.agents]
}

/// One operator (or its successor after a kill) against one fake cluster, with every request
/// it made.
struct Run {
    o: Options,
    cluster: Cluster,
    operator: Operator,
    log: Vec<Recorded>,
}

impl Run {
    async fn start(o: &Options, tag: &str) -> Self {
        let cluster = Cluster::new(o, tag).await.unwrap();
        let operator = Operator::start(o, &cluster.kubeconfig).unwrap();
        Run {
            o: o.clone(),
            cluster,
            operator,
            log: Vec::new(),
        }
    }

    fn fake(&self) -> &FakeApi {
        &self.cluster.fake
    }

    /// Keeps the requests made since the last call.
    fn drain(&mut self) -> usize {
        let new = self.cluster.fake.take_log();
        let n = new.len();
        self.log.extend(new);
        n
    }

    async fn until(&mut self, done: impl Fn(&FakeApi, &Options) -> bool) -> Duration {
        let start = Instant::now();
        let (fake, o) = (&self.cluster.fake, &self.o);
        if let Err(e) = self.operator.wait(fake, o, done).await {
            panic!("{e}");
        }
        self.drain();
        start.elapsed()
    }

    /// Waits for every CR to be ready; the time it took.
    async fn converge(&mut self) -> Duration {
        self.until(ready).await
    }

    /// Waits until no request came for [`QUIET`].
    async fn settle(&mut self) {
        let (start, mut last) = (Instant::now(), Instant::now());
        while last.elapsed() < QUIET {
            if self.drain() > 0 {
                last = Instant::now();
            }
            assert!(
                start.elapsed() < self.o.timeout,
                "the operator never stopped sending requests"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn writes(&self) -> Tally {
        scale::count_log(self.log.iter().cloned()).writes
    }

    /// Reconciles that failed in the running operator, from its metrics.
    fn failed_reconciles(&self) -> usize {
        let metrics = process::get(self.operator.port, "/metrics").expect("the operator's metrics");
        metrics
            .body
            .lines()
            .filter(|l| l.starts_with("clawops_operator_reconcile_errors_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    }
}

fn cr(i: usize, o: &Options, kind: &str, name: &str) -> String {
    format!(
        "/apis/clawops.dev/v1alpha1/namespaces/{}/{kind}/{name}",
        scale::namespace(i, o)
    )
}

fn agent_path(i: usize, o: &Options) -> String {
    cr(i, o, "agents", &format!("shrimp-{i}"))
}

/// The CR's Ready condition is True at its current generation.
fn is_ready(obj: &Value) -> bool {
    let s = &obj["status"];
    s["observedGeneration"] == obj["metadata"]["generation"]
        && s["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Converged, and every Agent Ready: a reconcile that failed also writes status (saying why),
/// which the scale bench's check alone would take for convergence.
fn ready(fake: &FakeApi, o: &Options) -> bool {
    scale::converged(fake, o)
        && (0..o.agents).all(|i| fake.get(&agent_path(i, o)).is_some_and(|a| is_ready(&a)))
}

/// Half the gateways are there: the middle of the convergence.
fn halfway(fake: &FakeApi, o: &Options) -> bool {
    let gateways = fake
        .paths("/apis/apps/v1/")
        .iter()
        .filter(|p| p.ends_with("-gateway"))
        .count();
    gateways >= o.agents / 2
}

/// Whether the owner an owner reference of `obj` names is there (in `obj`'s namespace, unless
/// `obj` is cluster-scoped) with that uid.
fn owner_alive(fake: &FakeApi, obj: &Value, owner: &Value) -> bool {
    let mut probe = serde_json::json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "metadata": {"name": owner["name"], "namespace": obj["metadata"]["namespace"]}});
    if obj["metadata"]["namespace"].is_null() {
        probe["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
    }
    fake.get(&path_of(&probe))
        .is_some_and(|o| o["metadata"]["uid"] == owner["uid"])
}

/// Generated objects no live CR accounts for: one with an owner reference to an object that is
/// gone (or to another of the same name: the garbage collector compares uids), a namespaced
/// one owned by nothing, or a ClusterRoleBinding (cluster-scoped, so it cannot name the
/// namespaced Agent as owner; the Agent's finalizer deletes it) whose Agent is gone.
fn orphans(cluster: &Cluster) -> Vec<String> {
    let fake = &cluster.fake;
    cluster
        .generated()
        .into_iter()
        .filter(|path| {
            let obj = fake.get(path).unwrap();
            let owners = obj["metadata"]["ownerReferences"].as_array();
            match owners {
                Some(refs) if !refs.is_empty() => !refs.iter().all(|r| owner_alive(fake, &obj, r)),
                _ if obj["kind"] == "ClusterRoleBinding" => {
                    let ns = obj["subjects"][0]["namespace"].as_str().unwrap_or_default();
                    let agent = obj["metadata"]["labels"][LABEL_INSTANCE]
                        .as_str()
                        .unwrap_or_default();
                    fake.get(&format!(
                        "/apis/clawops.dev/v1alpha1/namespaces/{ns}/agents/{agent}"
                    ))
                    .is_none()
                }
                _ => true,
            }
        })
        .collect()
}

/// Each Agent's generated gateway token, by Secret path.
fn tokens(fake: &FakeApi, o: &Options) -> BTreeMap<String, Value> {
    (0..o.agents)
        .filter_map(|i| {
            let path = format!(
                "/api/v1/namespaces/{}/secrets/shrimp-{i}-gateway-token",
                scale::namespace(i, o)
            );
            Some((path.clone(), fake.get(&path)?["data"].clone()))
        })
        .collect()
}

/// Creations of token Secrets the operator sent: each carries a newly generated token, so more
/// than one per Agent means a token was generated again (and refused, or worse, stored).
fn token_creations(log: &[Recorded]) -> usize {
    log.iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/secrets"))
        .filter(|r| {
            r.body.as_ref().is_some_and(|b| {
                b["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-gateway-token"))
            })
        })
        .count()
}

fn total(t: &Tally) -> usize {
    t.values().sum()
}

/// The writes beyond the clean run's, by resource.
fn excess(writes: &Tally, clean: &Tally) -> Tally {
    writes
        .iter()
        .filter_map(|(k, n)| {
            let c = clean.get(k).copied().unwrap_or(0);
            (*n > c).then(|| (k.clone(), n - c))
        })
        .collect()
}

/// The figures of one case, checked against the clean run.
struct Outcome {
    expected: usize,
    found: usize,
    orphaned: Vec<String>,
    duplicate: Vec<String>,
    missing: Vec<String>,
    writes: Tally,
}

fn outcome(run: &Run, clean: &Baseline) -> Outcome {
    let found: BTreeSet<String> = run.cluster.generated().into_iter().collect();
    Outcome {
        expected: clean.objects.len(),
        found: found.len(),
        orphaned: orphans(&run.cluster),
        // Names are deterministic: an object the clean run does not have is a second one for
        // some purpose.
        duplicate: found.difference(&clean.objects).cloned().collect(),
        missing: clean.objects.difference(&found).cloned().collect(),
        writes: run.writes(),
    }
}

impl Outcome {
    /// Prints the case's line of figures and asserts the objects; writes are each case's own.
    fn report(&self, case: &str, o: &Options, clean: &Baseline, converged: Duration, notes: &str) {
        let (w, c) = (total(&self.writes), total(&clean.writes));
        println!(
            "operator fault [{case}]: {} Agents; objects expected {}, found {}; orphaned {}, \
             duplicate {}; writes {w} vs clean run {c} ({:+}: {:?}); converged {:.1} s after the \
             fault (clean run {:.1} s); {notes}",
            o.agents,
            self.expected,
            self.found,
            self.orphaned.len(),
            self.duplicate.len(),
            w as i64 - c as i64,
            excess(&self.writes, &clean.writes),
            converged.as_secs_f64(),
            clean.took.as_secs_f64(),
        );
        assert!(self.orphaned.is_empty(), "orphaned: {:?}", self.orphaned);
        assert!(self.duplicate.is_empty(), "duplicate: {:?}", self.duplicate);
        assert!(self.missing.is_empty(), "missing: {:?}", self.missing);
    }
}

/// Deletes every [`DELETE_EVERY`]th Agent, waits for the operator to let them go (its finalizer
/// deletes their ClusterRoleBindings), lets the garbage collector take what they owned, and
/// checks nothing of theirs is left. Prints what went.
async fn delete_some(run: &mut Run) {
    let o = run.o.clone();
    let doomed: Vec<usize> = (0..o.agents).step_by(DELETE_EVERY).collect();
    let before = run.cluster.generated().len();
    for &i in &doomed {
        assert!(run.fake().delete(&agent_path(i, &o)), "Agent {i} exists");
    }
    let gone = |fake: &FakeApi, o: &Options| {
        (0..o.agents)
            .step_by(DELETE_EVERY)
            .all(|i| fake.get(&agent_path(i, o)).is_none())
    };
    let took = run.until(gone).await;
    let by_operator = before - run.cluster.generated().len();
    let collected = run.fake().collect_garbage();
    run.settle().await;
    let left: Vec<String> = run
        .cluster
        .generated()
        .into_iter()
        .filter(|p| {
            let obj = run.fake().get(p).unwrap();
            let instance = &obj["metadata"]["labels"][LABEL_INSTANCE];
            doomed.iter().any(|i| *instance == format!("shrimp-{i}"))
        })
        .collect();
    let orphaned = orphans(&run.cluster);
    println!(
        "  deleted {} Agents: gone in {:.1} s, {by_operator} objects deleted by the operator, \
         {} by the garbage collector; left behind {}, orphaned {}",
        doomed.len(),
        took.as_secs_f64(),
        collected.len(),
        left.len(),
        orphaned.len()
    );
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(orphaned.is_empty(), "orphaned: {orphaned:?}");
    assert!(!collected.is_empty(), "the Agents owned objects");
}

/// Case b: SIGKILL when half the gateways are written, then a new operator.
async fn killed_halfway(o: Options) {
    let mut cache = BASELINES.lock().await;
    let clean = baseline(&mut cache, &o).await;
    let mut run = Run::start(&o, "kill").await;
    run.until(halfway).await;
    let failed_before = run.failed_reconciles();
    let tokens_before = tokens(run.fake(), &o);
    // SIGKILL (what `Child::kill` sends): no shutdown, requests in flight cut where they are.
    run.operator.process.0.kill().unwrap();
    run.operator.process.0.wait().unwrap();
    run.operator = Operator::start(&o, &run.cluster.kubeconfig).unwrap();
    let converged = run.converge().await;
    run.settle().await;
    let failed = failed_before + run.failed_reconciles();
    let tokens_after = tokens(run.fake(), &o);
    let changed = tokens_before
        .iter()
        .filter(|(p, v)| tokens_after.get(*p) != Some(v))
        .count();
    let created = token_creations(&run.log);
    let out = outcome(&run, clean);
    out.report(
        "kill -9 halfway",
        &o,
        clean,
        converged,
        &format!(
            "{} of {} token Secrets there at the kill, {changed} changed; token Secret creations \
             {created} for {} Agents; failed reconciles {failed}",
            tokens_before.len(),
            o.agents,
            o.agents
        ),
    );
    assert!(!tokens_before.is_empty(), "killed before any token existed");
    assert_eq!(changed, 0, "a gateway token changed across the restart");
    assert_eq!(created, o.agents, "a token was generated again");
    // The state is all in the cluster (applied hashes, finalizers, status), so the new operator
    // redoes nothing the killed one finished: a write cut by the kill either landed (and is
    // seen) or did not (and is made once). Explained beyond the clean run: one status write per
    // failed reconcile, and the Events (one per applied batch) of reconciles cut in two.
    let extra = excess(&out.writes, &clean.writes);
    let beyond_events: usize = extra
        .iter()
        .filter(|(k, _)| *k != "events")
        .map(|(_, n)| n)
        .sum();
    assert!(
        beyond_events <= failed,
        "writes beyond the clean run's {extra:?}, with {failed} failed reconciles"
    );
    assert!(
        extra.get("events").copied().unwrap_or(0) <= usize::from(o.concurrency),
        "Events beyond the clean run's: {extra:?}"
    );
    delete_some(&mut run).await;
}

/// A 20-Agent run of the kill, quick enough for `make test`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_halfway_through_20_agents_converges_without_orphans_or_duplicates() {
    killed_halfway(quick()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "45 s; make reliability runs it"]
async fn operator_killed_halfway_through_200_agents_converges_without_orphans_or_duplicates() {
    killed_halfway(full()).await;
}

/// A watch of Agents opened by hand, its answer's head read.
fn open_watch(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /apis/clawops.dev/v1alpha1/agents?watch=true HTTP/1.1\r\nHost: fake\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the watch is answered");
    s
}

/// Whether the connection ends (end of stream or reset) before the read timeout.
fn read_to_end(mut s: std::net::TcpStream) -> bool {
    let mut rest = Vec::new();
    match std::io::Read::read_to_end(&mut s, &mut rest) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Case a: the API server down for 60 s (connections refused, watches cut) when half the
/// gateways are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "115 s; make reliability runs it"]
async fn api_server_down_60s_while_200_agents_converge_then_all_converge() {
    let o = full();
    let mut cache = BASELINES.lock().await;
    let clean = baseline(&mut cache, &o).await;
    let mut run = Run::start(&o, "outage").await;
    run.until(halfway).await;
    let addr = run.fake().http_addr().unwrap();
    let watch = tokio::task::spawn_blocking(move || open_watch(addr))
        .await
        .unwrap();
    run.fake().go_down().await;
    let down = Instant::now();
    // What a client sees: open watches end, new connections are refused.
    let cut = tokio::task::spawn_blocking(move || read_to_end(watch))
        .await
        .unwrap();
    assert!(cut, "an open watch was not cut");
    let refused = std::net::TcpStream::connect(addr).map_err(|e| e.kind());
    assert_eq!(
        refused.err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the port still listens"
    );
    // The outage itself: its length is the fault, not a stand-in for a condition.
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    run.fake().come_back().await;
    let converged = run.converge().await;
    run.settle().await;
    let failed = run.failed_reconciles();
    let out = outcome(&run, clean);
    out.report(
        "API server down 60 s",
        &o,
        clean,
        converged,
        &format!("failed reconciles {failed}"),
    );
    // Watches come back within the watcher's longest backoff (30 s); failed reconciles are
    // retried 15 s apart; then the rest of a clean run's work.
    let bound = Duration::from_secs(30) + Duration::from_secs(15) + clean.took;
    assert!(
        converged <= bound,
        "converged {converged:?} after the outage, bound {bound:?}"
    );
    let extra = total(&excess(&out.writes, &clean.writes));
    assert!(
        extra <= failed,
        "{extra} writes beyond the clean run's with {failed} failed reconciles"
    );
}

/// Case c: every watch ends with 410 Expired when half the gateways are written, and again once
/// all converged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "45 s; make reliability runs it"]
async fn watches_expiring_with_410_mid_convergence_cause_no_duplicates_and_no_write_storm() {
    let o = full();
    let mut cache = BASELINES.lock().await;
    let clean = baseline(&mut cache, &o).await;
    let mut run = Run::start(&o, "expire").await;
    run.until(halfway).await;
    // Every watch the operator keeps (it has listed all by now: half the work is done).
    let watches = run.fake().watches();
    run.fake().expire_watches();
    let converged = run.converge().await;
    run.settle().await;
    let failed = run.failed_reconciles();
    let out = outcome(&run, clean);

    assert_eq!(run.fake().watches(), watches, "every watch is back");
    // Once more, converged: every watch lists again, which must write nothing.
    let mark = run.log.len();
    run.fake().expire_watches();
    let relisted = run
        .until(|fake: &FakeApi, _: &Options| fake.watches() >= watches)
        .await;
    run.settle().await;
    let after = scale::count_log(run.log[mark..].iter().cloned());
    let reads = run.log[mark..].iter().filter(|r| !r.is_write()).count();
    out.report(
        "every watch 410 halfway",
        &o,
        clean,
        converged,
        &format!(
            "failed reconciles {failed}; a second 410 once converged: {watches} watches back in \
             {:.1} s, {reads} reads, writes {}",
            relisted.as_secs_f64(),
            total(&after.writes)
        ),
    );
    let extra = total(&excess(&out.writes, &clean.writes));
    assert!(
        extra <= failed,
        "{extra} writes beyond the clean run's with {failed} failed reconciles"
    );
    assert!(
        after.writes.is_empty(),
        "writes after re-listing a converged cluster: {:?}",
        after.writes
    );
    delete_some(&mut run).await;
}
