//! The `clawops` command: operator, CRDs and offline render.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clawops::cli::cron::CronAction;
use clawops::cli::pairing::PairingAction;
use clawops::cli::{self, GatewayAccess, files};
use clawops::gateway::{self, ConfigSource, GatewayOptions};
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
    /// List, approve, reject, revoke or rotate paired machines (nodes) of a running gateway, or
    /// run a command on one.
    Nodes {
        #[command(subcommand)]
        action: cli::nodes::NodesAction,
        #[command(flatten)]
        access: GatewayAccess,
    },
    /// List or answer commands waiting for the owner's approval on a running gateway.
    Approvals {
        #[command(subcommand)]
        action: cli::approvals::ApprovalsAction,
        #[command(flatten)]
        access: GatewayAccess,
    },
    /// The assistant's tool calls and the commands asked of nodes, from a running gateway.
    Audit {
        #[command(flatten)]
        args: cli::audit::AuditArgs,
        #[command(flatten)]
        access: GatewayAccess,
    },
    /// Run this machine as a node of a gateway.
    Node {
        #[command(subcommand)]
        action: cli::node::NodeAction,
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
    /// Move in from Clawdbot: write CRs, a state bundle and (asked for) a Secret from an install.
    Import(cli::import::ImportArgs),
    /// Back up a gateway's state, or restore a backup into a state dir.
    Backup {
        #[command(subcommand)]
        action: cli::backup::BackupAction,
        #[command(flatten)]
        access: GatewayAccess,
    },
    /// Load a state bundle (approved senders, pending codes) into a gateway.
    State {
        #[command(subcommand)]
        action: cli::state::StateAction,
        #[command(flatten)]
        access: GatewayAccess,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { out_dir } => files::crd(out_dir),
        Command::Generate { root } => files::generate(&root),
        Command::Render {
            files,
            namespace,
            gateway_image,
            check_secrets,
        } => files::render(&files, &namespace, gateway_image, check_secrets),
        Command::Cron { action, access } => {
            telemetry::init(cli.log_format);
            block_on(clawops::cli::cron::run(action, access))
        }
        Command::Pairing { action, access } => block_on(clawops::cli::pairing::run(action, access)),
        Command::Import(args) => cli::import::run(args),
        Command::Backup { action, access } => block_on(cli::backup::run(action, access)),
        Command::State { action, access } => block_on(cli::state::run(action, access)),
        Command::Nodes { action, access } => nodes(action, access),
        Command::Approvals { action, access } => block_on(cli::approvals::run(action, access)),
        Command::Audit { args, access } => block_on(cli::audit::run(args, access)),
        Command::Node { action } => {
            telemetry::init(cli.log_format);
            block_on(cli::node::run(action))
        }
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
                ConfigSource::Manifests { .. } => cli::default_state_dir(),
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

/// `clawops nodes …`; `nodes run` exits with the command's own exit code.
fn nodes(action: cli::nodes::NodesAction, access: GatewayAccess) -> ExitCode {
    let mut code = None;
    let exit = block_on(async {
        code = cli::nodes::run(action, access).await?;
        Ok(())
    });
    match code {
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => exit,
    }
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
