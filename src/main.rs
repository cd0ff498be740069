//! The `clawops` command: operator, CRDs and offline render.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clawops::gateway::client::ApiClient;
use clawops::gateway::{self, ConfigSource, GatewayOptions};
use clawops::manifests::Manifests;
use clawops::operator::{self, OperatorOptions};
use clawops::util::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "clawops",
    version,
    about = "Run a personal AI assistant on Kubernetes"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CLAWOPS_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile Agents, Channels, Crons and NodePairings into running gateways.
    Operator {
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:8080", env = "CLAWOPS_OPERATOR_LISTEN")]
        listen: SocketAddr,
        /// Take part in leader election on the Lease `clawops-operator` (for replicas > 1).
        #[arg(long, env = "CLAWOPS_LEADER_ELECTION")]
        leader_election: bool,
        /// Namespace of the leader election Lease.
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        lease_namespace: String,
        /// Default gateway image.
        #[arg(long, env = "CLAWOPS_GATEWAY_IMAGE")]
        gateway_image: Option<String>,
        /// Reconciles of each kind (Agent, Channel, Cron, NodePairing) in flight at once.
        #[arg(long, env = "CLAWOPS_CONCURRENCY", default_value_t = operator::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
    },
    /// Run the gateway: from `gateway.json` (in the pod) or from the CR YAML (standalone).
    Gateway {
        /// `gateway.json` as the operator renders it.
        #[arg(long, conflicts_with = "from", required_unless_present = "from")]
        config: Option<PathBuf>,
        /// Agent/Channel/Cron YAML to run standalone; secrets come from environment variables
        /// named after their keys (zai-api-key → ZAI_API_KEY).
        #[arg(long, num_args = 1..)]
        from: Vec<String>,
        /// The Agent to run when the YAML holds several.
        #[arg(long)]
        agent: Option<String>,
        /// State directory (approved senders, history, offsets); `~/.clawops` standalone.
        #[arg(long, env = "CLAWOPS_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Listen address. Default: 127.0.0.1 on the config's port (18789) standalone, all
        /// interfaces in a pod (KUBERNETES_SERVICE_HOST set, or a gateway.json rendered for a
        /// cluster).
        #[arg(long, env = "CLAWOPS_GATEWAY_LISTEN")]
        listen: Option<SocketAddr>,
        /// Seconds each Telegram getUpdates long poll is held while there is no news (lower it
        /// if a proxy on the way cuts idle requests sooner).
        #[arg(
            long,
            env = "CLAWOPS_TELEGRAM_POLL_TIMEOUT",
            default_value_t = gateway::telegram::POLL_TIMEOUT,
            value_parser = clap::value_parser!(u32).range(1..=50)
        )]
        telegram_poll_timeout: u32,
    },
    /// List or approve DM pairing requests on a running gateway.
    Pairing {
        #[command(subcommand)]
        action: PairingAction,
        #[command(flatten)]
        access: GatewayAccess,
    },
    /// Run a Cron now on a running gateway (what a Cron's CronJob runs).
    Cron {
        #[command(subcommand)]
        action: CronAction,
        #[command(flatten)]
        access: GatewayAccess,
    },
    /// Print the CustomResourceDefinitions, or write one file per CRD into a directory.
    Crd {
        /// Write `<plural>.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Write the generated files (crds/, the chart's CRD and ClusterRole templates) under a
    /// repository root (`make generate`).
    #[command(hide = true)]
    Generate {
        /// The repository root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Print, offline, every object the operator would create from CR (and Secret) YAML.
    Render {
        /// CR and Secret YAML files.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<String>,
        /// Namespace for objects that name none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Default gateway image.
        #[arg(long)]
        gateway_image: Option<String>,
        /// Check the values of Secrets given in the files like the operator does (placeholders
        /// such as CHANGE_ME are refused).
        #[arg(long)]
        check_secrets: bool,
    },
}

/// How the CLI reaches a running gateway.
#[derive(clap::Args)]
struct GatewayAccess {
    /// The gateway's URL.
    #[arg(
        long,
        global = true,
        env = "CLAWOPS_GATEWAY_URL",
        default_value = "http://127.0.0.1:18789"
    )]
    url: String,
    /// The gateway token (default: the standalone gateway's token file).
    #[arg(
        long,
        global = true,
        env = "CLAWOPS_GATEWAY_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// The standalone gateway's state directory, to find its token file.
    #[arg(long, global = true, env = "CLAWOPS_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

impl GatewayAccess {
    /// A client; the local token file is only offered to a local gateway, or when asked for.
    fn client(self) -> Result<ApiClient, gateway::client::ClientError> {
        let local = self.url.starts_with("http://127.0.0.1")
            || self.url.starts_with("http://localhost")
            || self.url.starts_with("http://[::1]");
        let state_dir = self.state_dir.or_else(|| local.then(default_state_dir));
        ApiClient::new(&self.url, self.token, state_dir)
    }
}

#[derive(Subcommand)]
enum CronAction {
    /// Run the Cron now and wait for its result; exits 1 when the run failed.
    Run {
        /// The Cron's name.
        name: String,
        /// How long to keep trying while the gateway is not reachable or not ready (seconds).
        #[arg(long, default_value_t = 300)]
        wait: u64,
        /// Print the run record as JSON.
        #[arg(long)]
        json: bool,
        /// Record the outcome on the Cron (failure time, reason, failures in a row, a Warning
        /// Event) through the Kubernetes API, as the Cron's CronJob does.
        #[arg(long)]
        record: bool,
        /// The Cron's namespace for --record (default: the client's, in a pod its own).
        #[arg(long, env = "POD_NAMESPACE")]
        namespace: Option<String>,
        /// Where to write a failure's reason for `kubectl describe pod` (in a pod:
        /// /dev/termination-log).
        #[arg(long, hide = true, env = "CLAWOPS_TERMINATION_LOG")]
        termination_log: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PairingAction {
    /// Pending pairing codes of a channel (`telegram`, or the Channel's name).
    List {
        channel: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pairing code: its sender may chat from now on.
    Approve {
        channel: String,
        code: String,
        /// Tell the sender they are approved.
        #[arg(long)]
        notify: bool,
    },
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".clawops"))
        .unwrap_or_else(|| PathBuf::from(".clawops"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { out_dir } => crd(out_dir),
        Command::Generate { root } => {
            for (path, content) in clawops::generate::files() {
                let path = root.join(path);
                if let Err(e) = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|_| std::fs::write(&path, content))
                {
                    eprintln!("error: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Command::Render {
            files,
            namespace,
            gateway_image,
            check_secrets,
        } => {
            let image = gateway_image.unwrap_or_else(clawops::default_image);
            let result = Manifests::from_files(&files, &namespace)
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    clawops::render::render(&m, &image, check_secrets).map_err(|e| e.to_string())
                });
            match result {
                Ok(r) => {
                    for n in r.notes {
                        eprintln!("note: {n}");
                    }
                    print!("{}", r.yaml);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Cron {
            action:
                CronAction::Run {
                    name,
                    wait,
                    json,
                    record,
                    namespace,
                    termination_log,
                },
            access,
        } => {
            telemetry::init(cli.log_format);
            block_on(async move {
                let wait = std::time::Duration::from_secs(wait);
                let result = match access.client() {
                    Ok(api) => gateway::client::run_cron(&api, &name, wait).await,
                    Err(e) => Err(e),
                };
                let failure = result.as_ref().err().map(ToString::to_string);
                if record {
                    record_run(&name, namespace, failure.as_deref()).await;
                }
                let termination_log = termination_log.or_else(|| {
                    gateway::client::in_pod()
                        .then(|| PathBuf::from(gateway::cron_outcome::TERMINATION_LOG))
                });
                if let (Some(reason), Some(path)) = (&failure, termination_log) {
                    gateway::cron_outcome::write_termination_message(&path, reason);
                }
                let run = result?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&run)?);
                } else {
                    let reply: clawops::api::CronRunReply = serde_json::from_value(run)?;
                    let r = &reply.run;
                    println!("Cron {name}: {}", r.status);
                    let lines = [
                        ("patrol", r.patrol.as_deref()),
                        ("summary", Some(r.summary.as_str())),
                        ("nextRun", r.next_run.as_deref()),
                    ];
                    for (key, v) in lines {
                        if let Some(v) = v {
                            println!("  {key}: {v}");
                        }
                    }
                }
                Ok(())
            })
        }
        Command::Pairing { action, access } => block_on(async move {
            let api = access.client()?;
            match action {
                PairingAction::List { channel, json } => {
                    let body = api.get(&format!("/api/pairing/{channel}")).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&body)?);
                    } else {
                        print!("{}", pairing_table(&serde_json::from_value(body)?));
                    }
                }
                PairingAction::Approve {
                    channel,
                    code,
                    notify,
                } => {
                    let request = clawops::api::ApproveRequest { code, notify };
                    let body = api
                        .post(
                            &format!("/api/pairing/{channel}/approve"),
                            &serde_json::to_value(&request)?,
                        )
                        .await?;
                    let body: clawops::api::Approved = serde_json::from_value(body)?;
                    let sender = body
                        .approved
                        .sender
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default();
                    let told = match (notify, body.notified) {
                        (true, true) => "; they were told",
                        (true, false) => "; telling them failed (see the gateway log)",
                        _ => "",
                    };
                    println!(
                        "Approved Telegram user {}{sender} on channel {}{told}.",
                        body.approved.id, body.channel
                    );
                }
            }
            Ok(())
        }),
        Command::Gateway {
            config,
            from,
            agent,
            state_dir,
            listen,
            telegram_poll_timeout,
        } => {
            telemetry::init(cli.log_format);
            let source = match config {
                Some(path) => ConfigSource::File(path),
                None => ConfigSource::Manifests { files: from, agent },
            };
            let state_dir = state_dir.unwrap_or_else(|| match &source {
                ConfigSource::File(_) => PathBuf::from(clawops::consts::STATE_DIR),
                ConfigSource::Manifests { .. } => default_state_dir(),
            });
            block_on(gateway::run(GatewayOptions {
                source,
                state_dir,
                listen,
                polling: gateway::telegram::Polling::new(telegram_poll_timeout),
            }))
        }
        Command::Operator {
            namespace,
            listen,
            leader_election,
            lease_namespace,
            gateway_image,
            concurrency,
        } => {
            telemetry::init(cli.log_format);
            let opts = OperatorOptions {
                concurrency,
                namespace,
                listen,
                leader_election,
                lease_namespace,
                image: gateway_image.unwrap_or_else(clawops::default_image),
            };
            block_on_one_thread(operator::run(opts))
        }
    }
}

/// Records a run's outcome on its Cron; a client that cannot be built, or an API server that
/// does not answer within a minute, is logged, never fatal.
async fn record_run(name: &str, namespace: Option<String>, failure: Option<&str>) {
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "no Kubernetes client: this run is not recorded on the Cron");
            return;
        }
    };
    let ns = namespace.unwrap_or_else(|| client.default_namespace().to_string());
    let recording = gateway::cron_outcome::record(client, &ns, name, failure);
    if tokio::time::timeout(std::time::Duration::from_secs(60), recording)
        .await
        .is_err()
    {
        tracing::warn!(cron = %name, "the Kubernetes API did not answer in time: this run is not recorded on the Cron");
    }
}

/// The pending requests as a table.
fn pairing_table(list: &clawops::api::PairingList) -> String {
    let (channel, approved) = (&list.channel, list.approved_senders);
    if list.pending.is_empty() {
        return format!(
            "No pending pairing requests on channel {channel} ({approved} approved).\n"
        );
    }
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut out = format!(
        "{:<10} {:<18} {:<20} {:<22} {}\n",
        "Code", "Telegram user id", "Sender", "Requested", "Expires"
    );
    for p in &list.pending {
        out += &format!(
            "{:<10} {:<18} {:<20} {:<22} {}\n",
            p.code,
            p.id,
            p.sender.as_deref().unwrap_or("-"),
            time(&p.requested_at),
            time(&p.expires_at)
        );
    }
    out + &format!("Approve with: clawops pairing approve {channel} <CODE>\n")
}

/// Runs a long-lived command on a multi-threaded runtime; errors end it with exit code 1.
fn block_on(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    run_on(tokio::runtime::Builder::new_multi_thread(), fut)
}

/// Runs the operator on one thread: its work is waiting on the API server, and one thread
/// keeps one malloc arena, where each worker thread's own arena held on to freed memory
/// (RSS at 1,000 Agents 48 MiB on the multi-threaded runtime).
fn block_on_one_thread(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    run_on(tokio::runtime::Builder::new_current_thread(), fut)
}

fn run_on(
    mut builder: tokio::runtime::Builder,
    fut: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let rt = builder.enable_all().build().expect("tokio runtime");
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn crd(out_dir: Option<PathBuf>) -> ExitCode {
    let crds = clawops::crd::all();
    match out_dir {
        None => {
            for c in &crds {
                print!("{}", clawops::crd::to_yaml(c));
            }
        }
        Some(dir) => {
            for c in &crds {
                let path = dir.join(clawops::crd::file_name(c));
                if let Err(e) = std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::write(&path, clawops::crd::to_yaml(c)))
                {
                    eprintln!("error: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
