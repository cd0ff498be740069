//! The operator at scale: N copies of the shrimp example in a fake API server over HTTP (it
//! keeps objects, serves lists and watches, and adds a fixed latency per write), the real
//! `clawops operator` process against it, and the figures: convergence time against its bound,
//! writes per generated object and per CR, writes and lists in steady state, and RSS.
//! Shared by the bench (which prints) and its smoke test (which asserts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clawops::consts::{FIELD_MANAGER, LABEL_MANAGED_BY};
use serde_json::{Value, json};

use super::fake_api::{FakeApi, Recorded};
use super::process::Reaper;

#[derive(Clone)]
pub struct Options {
    pub agents: usize,
    /// Agents per namespace: several share one, as Secret and member lookups are per namespace.
    pub per_namespace: usize,
    pub write_latency: Duration,
    /// Passed as `--concurrency` (through the environment, so older binaries ignore it).
    pub concurrency: u16,
    pub steady: Duration,
    pub binary: String,
    pub timeout: Duration,
}

/// Writes and lists by resource (`deployments`, `agents/status`, …).
pub type Tally = BTreeMap<String, usize>;

pub struct Figures {
    pub agents: usize,
    pub converged: Duration,
    /// Writes a perfect operator makes: each generated object once, each CR's status once,
    /// each Agent's finalizer once.
    pub writes_needed: usize,
    pub bound: Duration,
    /// Writes per resource until convergence.
    pub writes: Tally,
    /// Objects per generated resource at convergence.
    pub objects: Tally,
    /// CRs per kind (`agents`, `channels`, `crons`).
    pub crs: Tally,
    pub steady_writes: Tally,
    pub steady_lists: Tally,
    pub startup_lists: Tally,
    pub rss_peak_kib: u64,
    pub rss_steady_kib: u64,
    /// CPU time the operator used until convergence (user + system).
    pub cpu_converge: Duration,
    /// Objects whose status was written more than once until convergence, with the bodies.
    pub repeated_status: BTreeMap<String, Vec<String>>,
    /// The mean delay the fake actually added to a write, against the configured latency.
    pub write_latency_added: Duration,
}

const BOT_TOKEN: &str = "7012345678:AAHk2x9dRealLookingBotTokenValue0123456";
const ZAI_KEY: &str = "3f9a1c2b7e4d4c8a9b0e1f2a3b4c5d6e.AbCdEfGhIjKlMnOp";
/// Between convergence and the steady-state window.
pub const SETTLE: Duration = Duration::from_secs(5);
const CR_KINDS: [&str; 3] = ["agents", "channels", "crons"];

/// The example's objects for agent number `i`, each name made unique by `-i`.
fn example(i: usize, ns: &str) -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/examples/shrimp.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the example");
    let agent = format!("shrimp-{i}");
    let secret = format!("shrimp-{i}-secrets");
    let channel = format!("telegram-{i}");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let mut o: Value = serde::Deserialize::deserialize(d).expect("YAML");
            let name = format!("{}-{i}", o["metadata"]["name"].as_str().unwrap());
            o["metadata"]["name"] = json!(name);
            o["metadata"]["namespace"] = json!(ns);
            match o["kind"].as_str().unwrap() {
                "Secret" => {
                    o["metadata"]["name"] = json!(secret);
                    o["stringData"] =
                        json!({"telegram-bot-token": BOT_TOKEN, "zai-api-key": ZAI_KEY});
                }
                "Agent" => {
                    o["metadata"]["name"] = json!(agent);
                    o["spec"]["model"]["apiKeySecretRef"]["name"] = json!(secret);
                    o["spec"]["alerts"]["deliver"]["channelRef"] = json!(channel);
                }
                "Channel" => {
                    o["spec"]["agentRef"] = json!(agent);
                    o["spec"]["telegram"]["botTokenSecretRef"]["name"] = json!(secret);
                }
                "Cron" => {
                    o["spec"]["agentRef"] = json!(agent);
                    o["spec"]["deliver"]["channelRef"] = json!(channel);
                }
                k => panic!("unexpected kind {k} in the example"),
            }
            // What `kubectl apply` leaves on every object it creates: a copy of it.
            let copy = o.to_string();
            o["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
                json!(copy);
            o
        })
        .collect()
}

/// (resource, subresource, named) of a request path.
pub fn resource(path: &str) -> (String, Option<String>, bool) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = if segs[0] == "api" {
        &segs[2..]
    } else {
        &segs[3..]
    };
    let rest = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        &rest[2..]
    } else {
        rest
    };
    (
        rest[0].to_string(),
        rest.get(2).map(|s| s.to_string()),
        rest.len() >= 2,
    )
}

pub struct Counts {
    pub writes: Tally,
    pub lists: Tally,
    /// Status writes to one object after its first, with every body sent to it: what a
    /// double write said, to tell a changed status from a stale read.
    pub repeated: BTreeMap<String, Vec<String>>,
}

/// Writes, lists and repeated status writes since the last call (it takes the fake's log).
pub fn count(fake: &FakeApi) -> Counts {
    count_log(fake.take_log())
}

/// Writes, lists and repeated status writes among `log`'s requests.
pub fn count_log(log: impl IntoIterator<Item = Recorded>) -> Counts {
    let mut c = Counts {
        writes: Tally::new(),
        lists: Tally::new(),
        repeated: BTreeMap::new(),
    };
    for r in log {
        if r.is_write() && r.path.ends_with("/status") {
            let body = r.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
            c.repeated.entry(r.path.clone()).or_default().push(body);
        }
        let (res, sub, named) = resource(&r.path);
        let key = match sub {
            Some(s) => format!("{res}/{s}"),
            None => res,
        };
        if r.is_write() {
            *c.writes.entry(key).or_default() += 1;
        } else if !named && !r.query.contains("watch=true") {
            *c.lists.entry(key).or_default() += 1;
        }
    }
    c.repeated.retain(|_, bodies| bodies.len() > 1);
    c
}

/// User + system CPU time of a process.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// VmHWM and VmRSS of a process, in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// What convergence still waits for, counted per kind of object.
pub fn missing(fake: &FakeApi, o: &Options) -> String {
    let mut waiting = Tally::new();
    for i in 0..o.agents {
        let ns = namespace(i, o);
        let crd = |kind: &str, name: String| {
            fake.get(&format!(
                "/apis/clawops.dev/v1alpha1/namespaces/{ns}/{kind}/{name}"
            ))
        };
        let agent = crd("agents", format!("shrimp-{i}"));
        if !agent.as_ref().is_some_and(|a| {
            !a["status"]["conditions"].is_null()
                && a["status"]["observedGeneration"] == a["metadata"]["generation"]
        }) {
            *waiting.entry("Agent status".into()).or_default() += 1;
        }
        if fake
            .get(&format!(
                "/apis/apps/v1/namespaces/{ns}/deployments/shrimp-{i}-gateway"
            ))
            .is_none()
        {
            *waiting.entry("Deployment".into()).or_default() += 1;
        }
        if crd("channels", format!("telegram-{i}")).is_none_or(|c| c["status"].is_null()) {
            *waiting.entry("Channel status".into()).or_default() += 1;
        }
        for c in ["morning", "evening"] {
            if crd("crons", format!("{c}-patrol-{i}")).is_none_or(|c| c["status"].is_null()) {
                *waiting.entry("Cron status".into()).or_default() += 1;
            }
            if fake
                .get(&format!(
                    "/apis/batch/v1/namespaces/{ns}/cronjobs/shrimp-{i}-{c}-patrol-{i}"
                ))
                .is_none()
            {
                *waiting.entry("CronJob".into()).or_default() += 1;
            }
        }
    }
    format!("still waiting for {waiting:?}")
}

/// Every Agent observed at its generation with its Deployment and CronJobs, every member with
/// a status.
pub fn converged(fake: &FakeApi, o: &Options) -> bool {
    (0..o.agents).all(|i| {
        let ns = namespace(i, o);
        let agent = fake.get(&format!(
            "/apis/clawops.dev/v1alpha1/namespaces/{ns}/agents/shrimp-{i}"
        ));
        let observed = agent.is_some_and(|a| {
            !a["status"]["conditions"].is_null()
                && a["status"]["observedGeneration"] == a["metadata"]["generation"]
        });
        let has = |p: String| fake.get(&p).is_some();
        let status = |p: String| fake.get(&p).is_some_and(|m| !m["status"].is_null());
        observed
            && has(format!(
                "/apis/apps/v1/namespaces/{ns}/deployments/shrimp-{i}-gateway"
            ))
            && ["morning", "evening"].iter().all(|c| {
                has(format!(
                    "/apis/batch/v1/namespaces/{ns}/cronjobs/shrimp-{i}-{c}-patrol-{i}"
                )) && status(format!(
                    "/apis/clawops.dev/v1alpha1/namespaces/{ns}/crons/{c}-patrol-{i}"
                ))
            })
            && status(format!(
                "/apis/clawops.dev/v1alpha1/namespaces/{ns}/channels/telegram-{i}"
            ))
    })
}

pub fn namespace(i: usize, o: &Options) -> String {
    format!("team-{}", i / o.per_namespace.max(1))
}

/// The fake API server holding `o.agents` copies of the example (and the chart's cluster reader
/// role), its Deployment and Ingress controllers on, served over HTTP.
pub struct Cluster {
    pub fake: FakeApi,
    pub kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    /// `tag` keeps the kubeconfigs of clusters alive at once apart.
    pub async fn new(o: &Options, tag: &str) -> Result<Self, String> {
        let fake = FakeApi::new();
        // The chart installs the cluster reader role every `clusterAccess: read` gateway is bound to.
        fake.insert(&clawops::plan::build::rbac::cluster_reader_role());
        for i in 0..o.agents {
            for obj in example(i, &namespace(i, o)) {
                fake.insert(&obj);
            }
        }
        fake.set_controllers(true);
        fake.set_write_latency(o.write_latency);
        let dir = std::env::temp_dir().join(format!(
            "clawops-scale-{}-{}-{tag}",
            std::process::id(),
            o.agents
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let kubeconfig = fake.serve_http(&dir).await;
        let _ = fake.take_log();
        Ok(Self {
            fake,
            kubeconfig,
            dir,
        })
    }

    /// Paths of the objects the operator generated (not the CRs, their Events, or what the
    /// chart installed).
    pub fn generated(&self) -> Vec<String> {
        let fake = &self.fake;
        fake.paths("/")
            .into_iter()
            .filter(|path| {
                let (res, _, _) = resource(path);
                // Cluster-scoped ClusterRoleBindings have no owner, only the label.
                let generated = fake.get(path).is_some_and(|v| {
                    v["metadata"]["labels"][LABEL_MANAGED_BY] == FIELD_MANAGER
                        || v["metadata"]["ownerReferences"].is_array()
                });
                // The cluster reader role comes with the chart, not from the operator.
                let installed = path.ends_with("/clusterroles/clawops-cluster-reader");
                !CR_KINDS.contains(&res.as_str()) && res != "events" && generated && !installed
            })
            .collect()
    }
}

/// The `clawops operator` process, killed when dropped.
pub struct Operator {
    pub process: Reaper,
    /// Where it serves /metrics.
    pub port: u16,
}

impl Operator {
    pub fn start(o: &Options, kubeconfig: &Path) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(&o.binary)
            .args(["operator", "--listen", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("CLAWOPS_CONCURRENCY", o.concurrency.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("SCALE_DEBUG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("starting {}: {e}", o.binary))?;
        Ok(Self {
            process: Reaper(child),
            port,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// Polls until `done` holds for the fake, or fails on timeout (saying what is missing) or
    /// when the operator exits.
    pub async fn wait(
        &mut self,
        fake: &FakeApi,
        o: &Options,
        done: impl Fn(&FakeApi, &Options) -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        while !done(fake, o) {
            if let Ok(Some(status)) = self.process.0.try_wait() {
                return Err(format!(
                    "the operator exited ({status}) before converging; is port {} taken?",
                    self.port
                ));
            }
            if start.elapsed() > o.timeout {
                return Err(format!(
                    "not converged within {:?}: {}",
                    o.timeout,
                    missing(fake, o)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

pub async fn run(o: &Options) -> Result<Figures, String> {
    let cluster = Cluster::new(o, "bench").await?;
    let fake = &cluster.fake;
    let start = Instant::now();
    let mut operator = Operator::start(o, &cluster.kubeconfig)?;
    let pid = operator.pid();
    operator.wait(fake, o, converged).await?;
    let converged_after = start.elapsed();
    let cpu_converge = cpu(pid);
    let startup = count(fake);

    let mut objects = Tally::new();
    for path in cluster.generated() {
        *objects.entry(resource(&path).0).or_default() += 1;
    }
    let crs: Tally = CR_KINDS
        .iter()
        .map(|k| {
            (
                k.to_string(),
                fake.paths("/apis/clawops.dev/")
                    .iter()
                    .filter(|p| resource(p).0 == *k)
                    .count(),
            )
        })
        .collect();
    let writes_needed =
        objects.values().sum::<usize>() + crs.values().sum::<usize>() + crs["agents"];
    let bound = o.write_latency * writes_needed as u32 / u32::from(o.concurrency.max(1));
    let bound = bound.mul_f64(1.25);

    // What the last writes trigger (a no-op pass, after the debounce) settles first.
    tokio::time::sleep(SETTLE).await;
    let _ = count(fake);
    tokio::time::sleep(o.steady).await;
    let steady = count(fake);
    let (peak, now) = rss(pid);
    drop(operator);
    Ok(Figures {
        agents: o.agents,
        converged: converged_after,
        writes_needed,
        bound,
        writes: startup.writes,
        objects,
        crs,
        steady_writes: steady.writes,
        steady_lists: steady.lists,
        startup_lists: startup.lists,
        rss_peak_kib: peak,
        rss_steady_kib: now,
        cpu_converge,
        write_latency_added: fake.mean_write_latency(),
        repeated_status: startup.repeated,
    })
}

impl Figures {
    /// Writes per generated object (by resource) and status writes per CR (by kind).
    pub fn per_object(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (res, n) in &self.objects {
            let w = self.writes.get(res).copied().unwrap_or(0);
            out.insert(res.clone(), w as f64 / (*n).max(1) as f64);
        }
        for (kind, n) in &self.crs {
            let w = self
                .writes
                .get(&format!("{kind}/status"))
                .copied()
                .unwrap_or(0);
            out.insert(format!("{kind}/status"), w as f64 / (*n).max(1) as f64);
        }
        out
    }

    pub fn print(&self) {
        let tally = |t: &Tally| {
            if t.is_empty() {
                "none".to_string()
            } else {
                t.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        println!(
            "== {} Agents (each with its Secret, Channel and two Crons)",
            self.agents
        );
        println!(
            "converged in {:.2} s; bound 1.25 × {} writes × latency ÷ concurrency = {:.2} s ({})",
            self.converged.as_secs_f64(),
            self.writes_needed,
            self.bound.as_secs_f64(),
            if self.converged <= self.bound {
                "within"
            } else {
                "OVER"
            }
        );
        println!(
            "mean delay the fake added per write: {:.2} ms",
            self.write_latency_added.as_secs_f64() * 1000.0
        );
        println!(
            "operator CPU until converged: {:.2} s",
            self.cpu_converge.as_secs_f64()
        );
        println!("writes until converged: {}", tally(&self.writes));
        for (path, bodies) in &self.repeated_status {
            println!("status written {} times: {path}", bodies.len());
            for b in bodies {
                println!("  {b}");
            }
        }
        println!("lists until converged: {}", tally(&self.startup_lists));
        println!(
            "writes per generated object / status writes per CR: {}",
            self.per_object()
                .iter()
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "steady state (after {} s to settle): writes {}; lists {}",
            SETTLE.as_secs(),
            tally(&self.steady_writes),
            tally(&self.steady_lists)
        );
        println!(
            "operator RSS: peak {:.1} MiB, steady {:.1} MiB",
            self.rss_peak_kib as f64 / 1024.0,
            self.rss_steady_kib as f64 / 1024.0
        );
    }
}
