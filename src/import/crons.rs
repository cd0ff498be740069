//! `cron/jobs.json` to Crons: a cron expression maps as it is, an `every` that a cron
//! expression can say (a divisor of an hour or a day) maps to one; one-shot `at` jobs and what
//! has no clawops equivalent are reported.

use serde_json::{Value, json};

use super::config::CHANNEL;
use super::report::Report;

/// A DNS-1123 name from a job's name (or id).
pub fn object_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(50).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "job".into() } else { out }
}

/// A 5-field expression for "every `ms`", when one says it exactly.
fn every(ms: u64) -> Option<String> {
    let minutes = ms / 60_000;
    if !ms.is_multiple_of(60_000) || minutes == 0 {
        return None;
    }
    if minutes < 60 && 60 % minutes == 0 {
        return Some(format!("*/{minutes} * * * *"));
    }
    let hours = minutes / 60;
    if minutes.is_multiple_of(60) && hours < 24 && 24 % hours == 0 {
        return Some(format!("0 */{hours} * * *"));
    }
    (minutes == 24 * 60).then(|| "0 0 * * *".to_string())
}

/// The Crons for `jobs` (`{"version":1,"jobs":[…]}`), for Agent `agent`.
pub fn map(
    jobs: &Value,
    file: &str,
    agent: &str,
    suspend_all: bool,
    default_tz: Option<&str>,
    report: &mut Report,
) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for job in jobs["jobs"].as_array().into_iter().flatten() {
        let id = job["id"].as_str().unwrap_or("?");
        let label = job["name"].as_str().unwrap_or(id);
        let at = format!("{file}: job {label}");
        let schedule = &job["schedule"];
        let (expr, tz) = match schedule["kind"].as_str() {
            Some("cron") => (
                schedule["expr"].as_str().map(String::from),
                schedule["tz"].as_str().map(String::from),
            ),
            Some("every") => match schedule["everyMs"].as_u64().and_then(every) {
                Some(e) => (Some(e), None),
                None => {
                    report.not_carried(
                        at,
                        format!(
                            "every {} ms has no cron expression: write a Cron with the nearest schedule",
                            schedule["everyMs"]
                        ),
                    );
                    continue;
                }
            },
            Some("at") => {
                report.not_carried(
                    at,
                    "a one-shot job (at) is not carried over: Crons repeat; run it once with `clawops cron run` after creating a Cron, or let it go",
                );
                continue;
            }
            _ => (None, None),
        };
        let Some(expr) = expr else {
            report.not_carried(at, "no schedule clawops can read: write this Cron by hand");
            continue;
        };
        let payload = &job["payload"];
        let message = match payload["kind"].as_str() {
            Some("agentTurn") => payload["message"].as_str(),
            Some("systemEvent") => {
                report.not_needed(
                    at.clone(),
                    "a system event for the main session: clawops runs it as the Cron's own turn and delivers the answer",
                );
                payload["text"].as_str()
            }
            _ => None,
        };
        let Some(message) = message.filter(|m| !m.trim().is_empty()) else {
            report.not_carried(at, "no message: write this Cron by hand");
            continue;
        };
        let mut name = object_name(label);
        if out.iter().any(|c| c["metadata"]["name"] == name.as_str()) {
            name = format!(
                "{name}-{}",
                object_name(id).chars().take(8).collect::<String>()
            );
        }
        let mut spec = json!({ "agentRef": agent, "schedule": expr, "message": message });
        if let Some(tz) = tz.as_deref().or(default_tz) {
            spec["timeZone"] = json!(tz);
        }
        let enabled = job["enabled"].as_bool().unwrap_or(true);
        if suspend_all || !enabled {
            spec["suspend"] = json!(true);
        }
        let to = payload["to"]
            .as_str()
            .map(String::from)
            .or_else(|| payload["to"].as_i64().map(|n| n.to_string()));
        let deliver = payload["deliver"].as_bool();
        match (to, deliver) {
            (_, Some(false)) => report.not_carried(
                at.clone(),
                "delivery was off (deliver: false): a clawops Cron without deliver only keeps its run log",
            ),
            (Some(to), _) => {
                let to = to.strip_prefix("telegram:").unwrap_or(&to).to_string();
                spec["deliver"] = json!({ "channelRef": CHANNEL, "to": to });
            }
            (None, _) => report.not_carried(
                at.clone(),
                "delivered to the last chat (no `to`): set spec.deliver.to to your Telegram user id (the pairing reply shows it)",
            ),
        }
        for (k, why) in [
            ("model", "a per-job model is not supported"),
            ("thinking", "per-job thinking is not supported"),
            ("timeoutSeconds", "per-job time limits are not supported"),
        ] {
            if !payload[k].is_null() {
                report.not_carried(at.clone(), format!("{k}: {why}"));
            }
        }
        if job["deleteAfterRun"].as_bool() == Some(true) {
            report.not_carried(
                at.clone(),
                "deleteAfterRun: delete the Cron after its run yourself",
            );
        }
        out.push(super::resource("Cron", &name, spec));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_maps_when_a_cron_expression_says_it_exactly() {
        assert_eq!(every(30 * 60_000).as_deref(), Some("*/30 * * * *"));
        assert_eq!(every(6 * 3_600_000).as_deref(), Some("0 */6 * * *"));
        assert_eq!(every(86_400_000).as_deref(), Some("0 0 * * *"));
        assert_eq!(every(7 * 60_000), None);
        assert_eq!(every(90 * 60_000), None);
        assert_eq!(every(1_500), None);
    }

    #[test]
    fn names_become_object_names() {
        assert_eq!(
            object_name("Morning patrol (08:10)"),
            "morning-patrol-08-10"
        );
        assert_eq!(object_name("早上巡检"), "job");
    }
}
