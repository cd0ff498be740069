//! A Cron is Ready when it validates and its CronJob exists; its status names the CronJob.

use k8s_openapi::api::batch::v1::CronJob;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::{Member, MemberError, agent_not_ready};
use crate::conditions::Cond;
use crate::consts::CONDITION_READY;
use crate::crd::{Agent, Channel, CommonStatus, Cron};
use crate::operator::context::Context;
use crate::plan::build::meta;
use crate::plan::{resolve, validate};

impl Member for Cron {
    const KIND: &'static str = "Cron";
    fn agent_ref(&self) -> &str {
        &self.spec.agent_ref
    }
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    async fn check(&self, agent: &Agent, ctx: &Context) -> Result<(Cond, Value), MemberError> {
        let ns = self.namespace().unwrap_or_default();
        let channels = match ctx.members.get() {
            Some(cache) => cache.channels(&ns, &agent.name_any()),
            None => {
                Api::<Channel>::namespaced(ctx.client.clone(), &ns)
                    .list(&ListParams::default())
                    .await
                    .map_err(|source| MemberError::Read {
                        what: "Channels".into(),
                        kind: Self::KIND,
                        name: self.name_any(),
                        source,
                    })?
                    .items
            }
        };
        let channels = resolve::members_of(agent, channels, |c| &c.spec.agent_ref);
        let job_name = meta::cron_job_name(agent, &self.name_any());
        // Whether it exists is all that is asked.
        let exists = Api::<CronJob>::namespaced(ctx.client.clone(), &ns)
            .get_metadata_opt(&job_name)
            .await
            .map_err(|source| MemberError::Read {
                what: format!("CronJob {job_name}"),
                kind: Self::KIND,
                name: self.name_any(),
                source,
            })?
            .is_some();
        let (ready, job) = cron_ready(self, agent, &channels, exists);
        let current = self.status.as_ref().and_then(|s| s.cron_job.clone());
        Ok((
            ready,
            if current == job {
                json!({})
            } else {
                json!({ "cronJob": job })
            },
        ))
    }
}

/// Ready of a Cron, and the CronJob it runs as once that exists.
pub fn cron_ready(
    cron: &Cron,
    agent: &Agent,
    channels: &[Channel],
    job_exists: bool,
) -> (Cond, Option<String>) {
    match validate::validate_cron(cron, agent, channels) {
        Ok(()) if !job_exists => {
            let job = meta::cron_job_name(agent, &cron.name_any());
            let why = agent_not_ready(agent)
                .unwrap_or_else(|| format!("Agent {} is rolling it out", agent.name_any()));
            (
                Cond::is_false(
                    CONDITION_READY,
                    "WaitingForAgent",
                    format!("CronJob {job} does not exist yet: {why}"),
                ),
                None,
            )
        }
        Ok(()) => {
            let job = meta::cron_job_name(agent, &cron.name_any());
            let state = if cron.spec.suspend {
                "suspended"
            } else {
                "scheduled"
            };
            (
                Cond::is_true(
                    CONDITION_READY,
                    "Scheduled",
                    format!("{state} as CronJob {job}"),
                ),
                Some(job),
            )
        }
        Err(why) => (Cond::is_false(CONDITION_READY, "InvalidCron", why), None),
    }
}
