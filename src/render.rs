//! `clawops render`: the operator without a cluster. Reads CR (and Secret) YAML and prints
//! every object the operator would create, through the same plan and build steps.

use std::sync::Arc;

use kube::ResourceExt;

use crate::manifests::Manifests;
use crate::plan::build::{self, rbac};
use crate::plan::{self, RunsIn, resolve};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no Agent in the given files")]
    NoAgent,
    #[error("Agent {agent} would be refused:\n  - {}", problems.join("\n  - "))]
    Refused {
        agent: String,
        problems: Vec<String>,
    },
}

/// What `render` produced: the YAML stream, and notes for stderr.
pub struct Rendered {
    pub yaml: String,
    pub notes: Vec<String>,
}

/// Renders every Agent in `m`. Secret values are not checked (a template full of CHANGE_ME
/// renders) unless `check_secrets`, which refuses what the operator would refuse.
pub fn render(m: &Manifests, image: &str, check_secrets: bool) -> Result<Rendered, RenderError> {
    if m.agents.is_empty() {
        return Err(RenderError::NoAgent);
    }
    let mut docs: Vec<serde_json::Value> = Vec::new();
    let mut notes = Vec::new();
    let mut reader_role = false;
    for agent in &m.agents {
        let agent = Arc::new(agent.clone());
        let mut resolved =
            resolve::assemble(agent.clone(), m.channels.clone(), m.crons.clone(), |name| {
                m.secrets
                    .iter()
                    .find(|s| s.name_any() == name && s.namespace() == agent.namespace())
                    .cloned()
            });
        if !check_secrets {
            resolved.skip_secret_checks();
        }
        let plan =
            plan::plan(&resolved, RunsIn::Cluster).map_err(|problems| RenderError::Refused {
                agent: agent.name_any(),
                problems: problems.iter().map(ToString::to_string).collect(),
            })?;
        for (cron, why) in &plan.skipped_crons {
            notes.push(format!("Cron {cron} left out: {why}"));
        }
        for p in plan::validate::backup_problems(&resolved) {
            notes.push(format!(
                "Agent {}: backups will fail: {p}",
                agent.name_any()
            ));
        }
        let objects = build::build_all(&plan, image);
        if let Some(token) = &resolved.new_token {
            docs.push(
                serde_json::to_value(build::secrets::token_secret(&agent, token))
                    .expect("serializes"),
            );
            notes.push(format!(
                "generated a new gateway token into Secret {} (the operator does this once); keep it out of git or set spec.gateway.authTokenSecretRef",
                build::meta::token_secret_name(&agent)
            ));
        }
        reader_role |= objects.cluster_role_binding.is_some();
        docs.extend(objects.to_values());
    }
    if reader_role {
        docs.insert(
            0,
            serde_json::to_value(rbac::cluster_reader_role()).expect("serializes"),
        );
    }
    let yaml = docs
        .iter()
        .map(|d| {
            format!(
                "---\n{}",
                serde_yaml::to_string(d).expect("JSON values serialize to YAML")
            )
        })
        .collect::<String>();
    Ok(Rendered { yaml, notes })
}
