//! Where the gateway's config comes from: `gateway.json` as the operator renders it, or the
//! same Agent/Channel/Cron YAML the operator reads, rendered here (standalone).

use std::path::Path;
use std::sync::Arc;

use kube::ResourceExt;

use crate::manifests::Manifests;
use crate::plan::gateway_config::{self, GatewayConfig};
use crate::plan::{self, RunsIn, resolve};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
    #[error(transparent)]
    Manifests(#[from] crate::manifests::ManifestError),
    #[error("{0}")]
    Choose(String),
    #[error("Agent {agent}: {}", problems.join("; "))]
    Refused {
        agent: String,
        problems: Vec<String>,
    },
}

/// Reads `gateway.json`; an unknown field, a wrong type or a bad value fails with its path.
pub fn from_file(path: &Path) -> Result<GatewayConfig, LoadError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown)
}

pub fn parse(text: &str, shown: &str) -> Result<GatewayConfig, LoadError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let cfg: GatewayConfig =
        serde_path_to_error::deserialize(de).map_err(|e| LoadError::Invalid {
            path: shown.into(),
            field: match e.path().to_string().as_str() {
                "." => "(top level)".into(),
                p => p.into(),
            },
            message: e.into_inner().to_string(),
        })?;
    check(&cfg, shown)?;
    Ok(cfg)
}

/// What serde cannot check: the version, unique channel names, crons delivering to a channel.
fn check(cfg: &GatewayConfig, shown: &str) -> Result<(), LoadError> {
    let invalid = |field: String, message: String| LoadError::Invalid {
        path: shown.into(),
        field,
        message,
    };
    if cfg.version != gateway_config::CONFIG_VERSION {
        return Err(invalid(
            "version".into(),
            format!(
                "version {} is not supported; this gateway reads version {}",
                cfg.version,
                gateway_config::CONFIG_VERSION
            ),
        ));
    }
    for (i, c) in cfg.channels.iter().enumerate() {
        if cfg.channels[..i].iter().any(|o| o.name == c.name) {
            return Err(invalid(
                format!("channels[{i}].name"),
                format!("channel {} is defined twice", c.name),
            ));
        }
    }
    if let Some(Err(e)) = cfg
        .gateway
        .control_ui
        .as_ref()
        .and_then(|c| c.base_path.as_deref())
        .map(crate::crd::agent::check_base_path)
    {
        return Err(invalid("gateway.controlUi.basePath".into(), e));
    }
    if let Some(Err(e)) = cfg
        .agent
        .persona
        .as_deref()
        .map(crate::crd::agent::check_persona)
    {
        return Err(invalid("agent.persona".into(), e));
    }
    if let Some(Err(e)) = cfg
        .agent
        .model
        .timeout_seconds
        .map(crate::crd::agent::check_model_timeout)
    {
        return Err(invalid("agent.model.timeoutSeconds".into(), e));
    }
    for (i, c) in cfg.crons.iter().enumerate() {
        if let Some(d) = &c.deliver
            && !cfg.channels.iter().any(|ch| ch.name == d.channel)
        {
            return Err(invalid(
                format!("crons[{i}].deliver.channel"),
                format!("no channel named {}", d.channel),
            ));
        }
    }
    Ok(())
}

/// Renders the config from CR YAML, as the operator would, for the Agent named `agent` (or the
/// only one). Invalid Crons are left out with a warning, as in the cluster.
pub fn from_manifests(files: &[String], agent: Option<&str>) -> Result<GatewayConfig, LoadError> {
    let m = Manifests::from_files(files, "default")?;
    let chosen = match agent {
        Some(name) => m
            .agents
            .iter()
            .find(|a| a.name_any() == name)
            .ok_or_else(|| {
                LoadError::Choose(format!("no Agent named {name} in {}", files.join(", ")))
            })?,
        None => match m.agents.as_slice() {
            [one] => one,
            [] => {
                return Err(LoadError::Choose(format!(
                    "no Agent in {}",
                    files.join(", ")
                )));
            }
            many => {
                let names: Vec<String> = many.iter().map(|a| a.name_any()).collect();
                return Err(LoadError::Choose(format!(
                    "several Agents ({}); choose one with --agent",
                    names.join(", ")
                )));
            }
        },
    };
    // The gateway reads its secrets from its environment, so none are looked up here.
    let mut resolved = resolve::assemble(
        Arc::new(chosen.clone()),
        m.channels.clone(),
        m.crons.clone(),
        |_| None,
    );
    resolved.skip_secret_checks();
    let plan =
        plan::plan(&resolved, RunsIn::Standalone).map_err(|problems| LoadError::Refused {
            agent: chosen.name_any(),
            problems: problems.iter().map(ToString::to_string).collect(),
        })?;
    for (cron, why) in &plan.skipped_crons {
        tracing::warn!(%cron, %why, "cron left out");
    }
    Ok(plan.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_json() -> String {
        let path = format!(
            "{}/manifests/examples/shrimp.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        from_manifests(&[path], None).unwrap().to_json()
    }

    #[test]
    fn the_example_renders_and_reads_back() {
        let cfg = parse(&example_json(), "gateway.json").unwrap();
        assert_eq!(cfg.agent.id, "shrimp");
        assert_eq!(cfg.channels[0].telegram.bot_token_env, "TELEGRAM_BOT_TOKEN");
        assert_eq!(cfg.crons.len(), 2);
        assert!(
            cfg.kubernetes.is_none(),
            "standalone has no cluster to mirror into"
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_name_their_path() {
        let json = example_json().replace("\"maxConcurrent\"", "\"maxConcurent\"");
        let err = parse(&json, "gateway.json").unwrap_err().to_string();
        assert!(
            err.starts_with("gateway.json: agent.maxConcurent: unknown field `maxConcurent`"),
            "{err}"
        );
        let json =
            example_json().replace("\"dmPolicy\": \"pairing\"", "\"dmPolicy\": \"sometimes\"");
        let err = parse(&json, "gateway.json").unwrap_err().to_string();
        assert!(
            err.contains("channels[0].telegram.dmPolicy: unknown variant `sometimes`"),
            "{err}"
        );
        let err = parse("{", "gateway.json").unwrap_err().to_string();
        assert!(err.contains("gateway.json"), "{err}");
        let mut cfg: serde_json::Value = serde_json::from_str(&example_json()).unwrap();
        cfg["gateway"]["controlUi"] = serde_json::json!({"basePath": "clawops/"});
        let err = parse(&cfg.to_string(), "gateway.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gateway.controlUi.basePath: `clawops/` is not a path prefix"),
            "{err}"
        );
        let mut cfg: serde_json::Value = serde_json::from_str(&example_json()).unwrap();
        cfg["agent"]["model"]["timeoutSeconds"] = serde_json::json!(86400);
        let err = parse(&cfg.to_string(), "gateway.json")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "gateway.json: agent.model.timeoutSeconds: 86400 is out of range: use 5 to 3600 seconds"
        );
        // A 1 MB persona (it would go with every model call).
        let mut cfg: serde_json::Value = serde_json::from_str(&example_json()).unwrap();
        cfg["agent"]["persona"] = serde_json::json!("虾".repeat(1 << 20));
        let err = parse(&cfg.to_string(), "gateway.json")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "gateway.json: agent.persona: 1048576 characters; at most 32768 (it goes with every model call): shorten it"
        );
    }

    #[test]
    fn version_and_references_are_checked() {
        let json = example_json().replacen("\"version\": 1", "\"version\": 2", 1);
        assert!(
            parse(&json, "g.json")
                .unwrap_err()
                .to_string()
                .contains("version: version 2 is not supported")
        );
        let json = example_json().replace("\"channel\": \"telegram\"", "\"channel\": \"whatsapp\"");
        assert!(
            parse(&json, "g.json")
                .unwrap_err()
                .to_string()
                .contains("crons[0].deliver.channel: no channel named whatsapp")
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// gateway.json edited anywhere: read or refused with the file named, never a panic.
        #[test]
        fn fuzz_gateway_json(edits in crate::util::fuzz::edits()) {
            let text = crate::util::fuzz::apply(&example_json(), &edits);
            if let Err(e) = parse(&text, "gateway.json") {
                proptest::prop_assert!(e.to_string().starts_with("gateway.json"), "{e}");
            }
        }
    }
}
