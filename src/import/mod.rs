//! `clawops import`: moving in from a Clawdbot install. `source` reads its files; `config`,
//! `crons` and `nodes` map them to CRs (pure); `report` says what did not map and what to do.
//! The CRs are checked by the same parser and validation as `clawops render` before anything
//! is written.

pub mod advice;
pub mod config;
pub mod crons;
pub mod nodes;
pub mod report;
pub mod source;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::{PairingState, STATE_BUNDLE_VERSION, StateBundle};
use crate::gateway::telegram::pairing::Request;
use crate::manifests::Manifests;
use report::Report;
use source::Install;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error("the imported {what} would be refused: {problem}; fix it in {from} and import again")]
    Invalid {
        what: String,
        problem: String,
        from: String,
    },
    #[error(
        "--name {0}: an Agent name is lower-case letters, digits and '-', starting with a letter, at most 40 characters"
    )]
    Name(String),
}

/// What an import produces.
#[derive(Debug)]
pub struct Imported {
    /// The Agent, Channel, Crons and NodePairings, as YAML documents.
    pub yaml: String,
    /// The Secret with the values found (only written when asked).
    pub secret_yaml: String,
    pub bundle: StateBundle,
    pub report: Report,
    pub crons: usize,
    pub nodes: usize,
    pub approved: usize,
}

/// A clawops resource as JSON.
fn resource(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "clawops.dev/v1alpha1",
        "kind": kind,
        "metadata": { "name": name },
        "spec": spec,
    })
}

fn valid_name(name: &str) -> bool {
    name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

fn yaml_docs(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("JSON values serialize"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The pairing stores as a bundle; records that do not read are reported.
fn bundle(install: &Install, report: &mut Report) -> BTreeMap<String, PairingState> {
    let mut out = BTreeMap::new();
    for (channel, (pending, allowed)) in &install.pairing {
        if channel != config::CHANNEL {
            report.not_carried(
                format!("credentials/{channel}-*.json"),
                "only Telegram is supported: these senders are not carried over",
            );
            continue;
        }
        let mut state = PairingState::default();
        for a in allowed
            .as_ref()
            .and_then(|a| a["allowFrom"].as_array())
            .into_iter()
            .flatten()
        {
            let id = a.as_str().map_or_else(|| a.to_string(), String::from);
            if !state.allowed.contains(&id) {
                state.allowed.push(id);
            }
        }
        for r in pending
            .as_ref()
            .and_then(|p| p["requests"].as_array())
            .into_iter()
            .flatten()
        {
            match serde_json::from_value::<Request>(r.clone()) {
                Ok(req) => state.pending.push(req),
                Err(e) => report.not_carried(
                    format!("credentials/{channel}-pairing.json"),
                    format!("a pending request does not read ({e}); that sender asks again"),
                ),
            }
        }
        out.insert(config::CHANNEL.to_string(), state);
    }
    out
}

/// Whether there are jobs at all (for the note on patrols).
fn n_crons_hint(jobs: &Option<(String, Value)>) -> bool {
    jobs.as_ref()
        .is_some_and(|(_, j)| j["jobs"].as_array().is_some_and(|a| !a.is_empty()))
}

/// Maps `install` for an Agent named `name`.
pub fn plan(install: &Install, name: &str) -> Result<Imported, ImportError> {
    if !valid_name(name) {
        return Err(ImportError::Name(name.into()));
    }
    let mut report = Report::default();
    let file = install.config_path.as_str();
    // The env file is what the process had; the config's env block applies where it has none.
    let mut env = install.env.clone();
    for block in [&install.config["env"]["vars"], &install.config["env"]] {
        for (k, v) in block.as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                env.entry(k.clone()).or_insert_with(|| v.to_string());
            }
        }
    }
    let mut cfg = install.config.clone();
    let mut missing = Vec::new();
    config::substitute(&mut cfg, &env, &mut missing);
    missing.sort();
    missing.dedup();
    for m in missing {
        report.not_carried(
            format!("{file}: ${{{m}}}"),
            "not set in the env file: pass --env FILE, or put the value into the Secret yourself",
        );
    }
    let mapped = config::map(
        cfg,
        file,
        install.identity.as_ref(),
        &env,
        name,
        &mut report,
    );
    let crons = install.jobs.as_ref().map_or_else(Vec::new, |(f, jobs)| {
        crons::map(
            jobs,
            f,
            name,
            mapped.crons_off,
            mapped.time_zone.as_deref(),
            &mut report,
        )
    });
    let nodes = install.devices.as_ref().map_or_else(Vec::new, |(f, d)| {
        nodes::map(
            d,
            f,
            install.approvals.as_ref().map(|(f, v)| (f.as_str(), v)),
            &mapped.exec,
            name,
            &mut report,
        )
    });
    let channels = bundle(install, &mut report);
    let approved = channels.values().map(|c| c.allowed.len()).sum();

    for (key, what) in [
        (
            config::BOT_TOKEN_KEY,
            "the bot token (channels.telegram.botToken or TELEGRAM_BOT_TOKEN)",
        ),
        (
            config::MODEL_KEY_KEY,
            "the model key (env.ZAI_API_KEY or ZAI_API_KEY)",
        ),
    ] {
        match mapped.secrets.get(key) {
            None => report.not_carried(
                format!("Secret {name}-secrets: {key}"),
                format!("no value found for {what}: put it in the Secret (or pass --env FILE)"),
            ),
            Some(v) if crate::secrets::is_placeholder(v) => report.placeholder(
                format!("Secret {name}-secrets: {key}"),
                format!("{what} is a placeholder, not a real value"),
            ),
            Some(_) => {}
        }
    }
    if n_crons_hint(&install.jobs) {
        report.not_needed(
            "cron/jobs.json",
            "the Crons are plain turns, as in Clawdbot; add `patrol: {}` to one to have clawops collect the cluster's state for it (with clusterAccess: read)",
        );
    }

    let mut objects = vec![mapped.agent];
    objects.extend(mapped.channel);
    let (n_crons, n_nodes) = (crons.len(), nodes.len());
    objects.extend(crons);
    objects.extend(nodes);
    let yaml = format!(
        "# Imported from {file} by clawops import {}. Secret values are in a separate file\n# (--secrets-out), never here.\n{}",
        env!("CARGO_PKG_VERSION"),
        yaml_docs(&objects)
    );
    check(&yaml, file)?;
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": format!("{name}-secrets"),
            "labels": { "app.kubernetes.io/part-of": "clawops" },
        },
        "type": "Opaque",
        "stringData": mapped.secrets,
    });
    Ok(Imported {
        yaml,
        secret_yaml: yaml_docs(&[secret]),
        bundle: StateBundle {
            version: STATE_BUNDLE_VERSION,
            clawops: env!("CARGO_PKG_VERSION").into(),
            source: file.into(),
            channels,
        },
        report,
        crons: n_crons,
        nodes: n_nodes,
        approved,
    })
}

/// The written CRs read back as `render` and `gateway --from` read them, and pass validation.
fn check(yaml: &str, from: &str) -> Result<(), ImportError> {
    let invalid = |what: &str, problem: String| ImportError::Invalid {
        what: what.into(),
        problem,
        from: from.into(),
    };
    let mut m = Manifests::default();
    m.add_yaml("import", yaml, "default")
        .map_err(|e| invalid("YAML", e.to_string()))?;
    let agent = m.agents.first().expect("an Agent is always written");
    if let Some(p) = crate::plan::validate::validate_agent_spec(agent, &m.channels).first() {
        return Err(invalid("Agent", p.to_string()));
    }
    for c in &m.crons {
        crate::plan::validate::validate_cron(c, agent, &m.channels)
            .map_err(|e| invalid(&format!("Cron {}", kube::ResourceExt::name_any(c)), e))?;
    }
    Ok(())
}
