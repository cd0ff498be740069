//! Crons in the gateway: when they fire (`occurrence`), running one (`run`: `patrol`, turn,
//! delivery, record), the standalone scheduler that fires them on time (`schedule`), and what a
//! run leaves in the Cron's status (`status`, and `outcome` for the CronJob's own record).
//! Within cron/ the modules use each other one way: schedule -> run -> patrol, and
//! schedule, run, status -> occurrence; outcome -> status.

pub mod occurrence;
pub mod outcome;
pub mod patrol;
pub mod run;
pub mod schedule;
pub mod status;

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::Gateway;

/// Starts what fires the Crons. In a cluster their CronJobs do, so the gateway only writes each
/// Cron's next run into its status; standalone, the scheduler fires them (the handle).
pub fn start(gw: &Arc<Gateway>) -> Option<JoinHandle<()>> {
    let in_cluster = gw.config.kubernetes.is_some();
    match &gw.cron_status {
        Some(_) => {
            let gw = gw.clone();
            tokio::spawn(async move {
                if let Some(status) = &gw.cron_status {
                    status.announce(&gw.config.crons).await;
                }
            });
            None
        }
        // CLAWOPS_SKIP_CRON=1 turns the scheduler off, as CLAWDBOT_SKIP_CRON does upstream.
        None if !in_cluster
            && !gw.config.crons.is_empty()
            && std::env::var("CLAWOPS_SKIP_CRON").as_deref() != Ok("1") =>
        {
            Some(tokio::spawn(schedule::run(gw.clone())))
        }
        None => None,
    }
}
