//! Running a Cron (`POST /api/cron/{name}/run`, what `clawops cron run` and the standalone
//! scheduler call): collect the patrol facts, one agent turn with the Cron's message and the
//! facts, delivery to its chat. When the model fails, the patrol report itself is delivered,
//! marked as such: a patrol is never lost. Every run is recorded in the state directory and, in
//! a cluster, in the Cron's status.

use std::time::Instant;

use chrono::Utc;

use crate::api::{RunRecord, RunStatus};
use crate::gateway::Gateway;
use crate::gateway::assistant::{explain, speaks_cjk};
use crate::patrol::Report;
use crate::plan::gateway_config::CronConfig;
use crate::util::jsonl::JsonLog;

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// The turn's text: the Cron's instruction, then the facts, fenced so the model reports them
/// rather than treating them as instructions.
pub fn patrol_prompt(message: &str, report: &Report) -> String {
    format!(
        "{message}\n\nThe gateway has just patrolled; here are its facts. Report them concisely in your \
         language: what needs action first, each with its suggested command, then one line for the \
         rest. If there are no findings, say it is all clear in a line or two. Do not invent facts.\n\n\
         <patrol>\n{}</patrol>",
        report.render()
    )
}

/// What the chat gets when the model cannot answer a patrol: the reason, then the raw report.
pub fn fallback_text(why: &str, report: &Report, cjk: bool) -> String {
    let header = if cjk {
        "以下是未经模型整理的巡检原始报告："
    } else {
        "The raw patrol report follows (not summarised by the model):"
    };
    format!("⚠️ {why}\n{header}\n\n{}", report.render())
}

/// Runs `cron` now.
pub async fn run(gw: &Gateway, cron: &CronConfig) -> RunRecord {
    let started = Instant::now();
    let at = Utc::now();
    let report = match &cron.patrol {
        Some(spec) => Some(super::patrol::collect(gw, spec, at).await),
        None => None,
    };
    let prompt = match &report {
        Some(r) => patrol_prompt(&cron.message, r),
        None => cron.message.clone(),
    };
    let cjk = speaks_cjk(&gw.assistant.config);
    let answer = gw.assistant.one_off(&prompt).await;
    let (status, text) = match (&answer, &report) {
        (Ok(text), _) => (RunStatus::Ok, text.clone()),
        (Err(e), Some(r)) => (RunStatus::Fallback, fallback_text(&explain(e, cjk), r, cjk)),
        (Err(e), None) => (
            RunStatus::Error,
            format!("Cron {}: {}", cron.name, explain(e, cjk)),
        ),
    };
    let delivered = match &cron.deliver {
        Some(d) => match gw.deliver(&d.channel, &d.to, &text).await {
            Ok(sent) => sent,
            Err(why) => {
                tracing::warn!(cron = %cron.name, %why, "run not delivered");
                false
            }
        },
        None => false,
    };
    let record = RunRecord {
        ts: at,
        cron: cron.name.clone(),
        status,
        summary: match &answer {
            Ok(t) => first_line(t),
            Err(e) => e.to_string(),
        },
        patrol: report.as_ref().map(Report::summary),
        delivered,
        duration_ms: started.elapsed().as_millis() as u64,
        next_run: super::occurrence::next_run(cron, Utc::now()),
    };
    tracing::info!(cron = %cron.name, status = status.as_str(), delivered, patrol = record.patrol.as_deref().unwrap_or("-"), "cron run");
    let (state, line) = (gw.state.clone(), record.clone());
    if let Err(e) = tokio::task::spawn_blocking(move || runs(&state, &line.cron).try_append(&line))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    {
        tracing::warn!(cron = %cron.name, error = %e, "run not recorded");
    }
    if let Some(status) = &gw.cron_status {
        status.record(cron, &record, cron.deliver.is_some()).await;
    }
    record
}

/// The run log of Cron `name`: `cron/runs/<name>.jsonl` (mode 0600), oldest first.
pub fn runs(state: &crate::util::state_dir::StateDir, name: &str) -> JsonLog<RunRecord> {
    JsonLog::new(state.clone(), format!("cron/runs/{name}.jsonl"))
}
