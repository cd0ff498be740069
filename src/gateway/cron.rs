//! Running a Cron on request (`POST /api/cron/{name}/run`, what `clawops cron run` calls):
//! one agent turn with the Cron's message, delivered to its chat, recorded in the state
//! directory. Patrol facts join the turn with the patrol feature.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use super::Gateway;
use crate::config::CronConfig;

/// One run, as recorded in `cron/runs/<name>.jsonl`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub ts: chrono::DateTime<Utc>,
    pub cron: String,
    pub status: &'static str,
    /// The first line of what was delivered, or the error.
    pub summary: String,
    pub delivered: bool,
    pub duration_ms: u64,
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// Runs `cron` now. The record says whether the model answered and the answer was delivered.
pub async fn run(gw: &Gateway, cron: &CronConfig) -> RunRecord {
    let started = Instant::now();
    let answer = gw.agent.one_off(&cron.message).await;
    let (status, text) = match &answer {
        Ok(text) => ("ok", text.clone()),
        Err(e) => (
            "error",
            format!(
                "Cron {}: {}",
                cron.name,
                super::agent::explain(e, super::agent::speaks_cjk(&gw.agent.config))
            ),
        ),
    };
    let mut delivered = false;
    if let Some(d) = &cron.deliver {
        match (
            gw.channel(&d.channel),
            d.to.split(':').next().and_then(|c| c.parse::<i64>().ok()),
        ) {
            (Ok(channel), Some(chat)) => {
                delivered = channel.send(gw, teloxide::types::ChatId(chat), &text).await;
            }
            (Err(why), _) => tracing::warn!(cron = %cron.name, %why, "run not delivered"),
            (_, None) => {
                tracing::warn!(cron = %cron.name, to = %d.to, "run not delivered: deliver.to is not a chat id")
            }
        }
    }
    let record = RunRecord {
        ts: Utc::now(),
        cron: cron.name.clone(),
        status,
        summary: match &answer {
            Ok(t) => first_line(t),
            Err(e) => e.to_string(),
        },
        delivered,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    if let Err(e) = append(gw, &record) {
        tracing::warn!(cron = %cron.name, error = %e, "run not recorded");
    }
    record
}

/// Appends the record to `cron/runs/<name>.jsonl` (mode 0600).
fn append(gw: &Gateway, record: &RunRecord) -> std::io::Result<()> {
    let dir = gw.state.path().join("cron/runs");
    std::fs::create_dir_all(&dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(format!("{}.jsonl", record.cron)))?;
    writeln!(
        f,
        "{}",
        serde_json::to_string(record).expect("record serializes")
    )
}
