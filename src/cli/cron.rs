//! `clawops cron run`: ask the gateway to run a Cron now, print the result, and (in the Cron's
//! Job) record a failure on the Cron and in the pod's termination message.

use std::path::PathBuf;

use clap::Subcommand;

use super::GatewayAccess;
use super::client::run_cron;

#[derive(Subcommand)]
pub enum CronAction {
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

/// Runs the command; an error (the run failed, the gateway unreachable) ends it with exit 1.
pub async fn run(action: CronAction, access: GatewayAccess) -> anyhow::Result<()> {
    let CronAction::Run {
        name,
        wait,
        json,
        record,
        namespace,
        termination_log,
    } = action;
    let wait = std::time::Duration::from_secs(wait);
    let result = match access.client() {
        Ok(api) => run_cron(&api, &name, wait).await,
        Err(e) => Err(e),
    };
    let failure = result.as_ref().err().map(ToString::to_string);
    if record {
        record_run(&name, namespace, failure.as_deref()).await;
    }
    let termination_log = super::client::termination_log(termination_log);
    if let (Some(reason), Some(path)) = (&failure, termination_log) {
        crate::gateway::cron::outcome::write_termination_message(&path, reason);
    }
    let run = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        let reply: crate::api::CronRunReply = serde_json::from_value(run)?;
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
    let recording = crate::gateway::cron::outcome::record(client, &ns, name, failure);
    if tokio::time::timeout(std::time::Duration::from_secs(60), recording)
        .await
        .is_err()
    {
        tracing::warn!(cron = %name, "the Kubernetes API did not answer in time: this run is not recorded on the Cron");
    }
}
