//! Resolve: assemble what an Agent's gateway is made of — its Channels and Crons and the values
//! of every Secret key they reference — from objects already read (from the cluster by the
//! operator, from files by `render` and `gateway --from`). No I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use secrecy::SecretString;

use crate::crd::{Agent, Channel, Cron, SecretKeyRef};
use crate::plan::build::secrets::token_ref;
use crate::secrets::{self, SecretProblem};

/// A Secret key an Agent needs, the spec field that names it (for messages), and who reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretUse {
    pub field: String,
    pub reference: SecretKeyRef,
    pub reader: Reader,
}

/// Who reads a Secret key: the gateway (so a change rolls its pod) or only the backup Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    Gateway,
    Backup,
}

/// Every Secret key an Agent reads: its gateway's, including the generated token, and its
/// backup Job's.
pub fn secret_uses(agent: &Agent, channels: &[Channel]) -> Vec<SecretUse> {
    let mut uses = gateway_secret_uses(agent, channels);
    if let Some(b) = &agent.spec.backup {
        let field = "spec.backup.credentialsSecretRef";
        for reference in [
            b.credentials_secret_ref.access_key_id(),
            b.credentials_secret_ref.secret_access_key(),
        ] {
            uses.push(SecretUse {
                field: field.into(),
                reference,
                reader: Reader::Backup,
            });
        }
    }
    uses
}

/// Every Secret key an Agent's gateway reads, including the generated token.
pub fn gateway_secret_uses(agent: &Agent, channels: &[Channel]) -> Vec<SecretUse> {
    let mut uses = Vec::new();
    let mut push = |field: String, reference: SecretKeyRef| {
        uses.push(SecretUse {
            field,
            reference,
            reader: Reader::Gateway,
        })
    };
    push(
        if agent.spec.gateway.auth_token_secret_ref.is_some() {
            "spec.gateway.authTokenSecretRef".into()
        } else {
            "generated gateway token".into()
        },
        token_ref(agent),
    );
    if let Some(r) = &agent.spec.model.api_key_secret_ref {
        push("spec.model.apiKeySecretRef".into(), r.clone());
    }
    if let Some(r) = agent
        .spec
        .gateway
        .exposure()
        .sidecar()
        .and_then(|ts| ts.auth_key_secret_ref.as_ref())
    {
        push(
            "spec.gateway.expose.tailscale.authKeySecretRef".into(),
            r.clone(),
        );
    }
    for c in channels {
        push(
            format!("Channel {} spec.telegram.botTokenSecretRef", c.name_any()),
            c.spec.telegram.bot_token_secret_ref.clone(),
        );
    }
    uses
}

/// Looks one key up in a Secret (`data`, or `stringData` of Secrets read from files) and checks it.
pub fn lookup(secret: Option<&Secret>, key: &str) -> Result<SecretString, SecretProblem> {
    let secret = secret.ok_or(SecretProblem::SecretMissing)?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        })
        .ok_or(SecretProblem::KeyMissing)?;
    let value = SecretString::from(value);
    secrets::check_value(&value)?;
    Ok(value)
}

/// The values (or problems) of the referenced Secret keys. Debug never shows a value.
#[derive(Debug, Default)]
pub struct SecretValues(pub BTreeMap<SecretKeyRef, Result<SecretString, SecretProblem>>);

/// What the Agent's gateway is made of.
#[derive(Debug)]
pub struct Resolved {
    pub agent: Arc<Agent>,
    /// Channels and Crons whose `agentRef` names this Agent, sorted by name.
    pub channels: Vec<Channel>,
    pub crons: Vec<Cron>,
    pub secrets: SecretValues,
    /// A new token to store when the generated token Secret does not exist yet.
    pub new_token: Option<SecretString>,
}

impl Resolved {
    /// Stands a placeholder in for every Secret value that is missing or unusable, for plans
    /// made from files whose Secrets are templates (`render` without `--check-secrets`) or
    /// absent (`gateway --from`, which reads the values from its environment).
    pub fn skip_secret_checks(&mut self) {
        for (r, v) in self.secrets.0.iter_mut() {
            if v.is_err() {
                *v = Ok(SecretString::from(format!(
                    "unchecked:{}/{}",
                    r.name, r.key
                )));
            }
        }
    }
}

/// The items whose `agentRef` names this Agent, sorted by name.
pub fn members_of<T: ResourceExt>(
    agent: &Agent,
    items: impl IntoIterator<Item = T>,
    agent_ref: impl Fn(&T) -> &String,
) -> Vec<T> {
    let name = agent.name_any();
    let mut out: Vec<T> = items
        .into_iter()
        .filter(|i| *agent_ref(i) == name)
        .collect();
    out.sort_by_key(|i| i.name_any());
    out
}

/// Builds [`Resolved`] from members and a Secret lookup; shared by the cluster and file paths.
pub fn assemble(
    agent: Arc<Agent>,
    channels: impl IntoIterator<Item = Channel>,
    crons: impl IntoIterator<Item = Cron>,
    secret: impl Fn(&str) -> Option<Secret>,
) -> Resolved {
    let channels = members_of(&agent, channels, |c| &c.spec.agent_ref);
    let crons = members_of(&agent, crons, |c| &c.spec.agent_ref);
    let mut values = SecretValues::default();
    let mut new_token = None;
    let generated = agent
        .spec
        .gateway
        .auth_token_secret_ref
        .is_none()
        .then(|| token_ref(&agent));
    let mut cache: BTreeMap<String, Option<Secret>> = BTreeMap::new();
    for u in secret_uses(&agent, &channels) {
        let s = cache
            .entry(u.reference.name.clone())
            .or_insert_with(|| secret(&u.reference.name));
        let mut result = lookup(s.as_ref(), &u.reference.key);
        if Some(&u.reference) == generated.as_ref()
            && matches!(result, Err(SecretProblem::SecretMissing))
        {
            let token = secrets::generate_token();
            result = Ok(token.clone());
            new_token = Some(token);
        }
        values.0.insert(u.reference, result);
    }
    Resolved {
        agent,
        channels,
        crons,
        secrets: values,
        new_token,
    }
}
