//! A Channel is Ready when its bot token Secret holds a usable value and its Agent serves.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::{Member, MemberError, agent_not_ready};
use crate::conditions::Cond;
use crate::consts::CONDITION_READY;
use crate::crd::{Agent, Channel, CommonStatus};
use crate::operator::context::Context;
use crate::plan::resolve;

impl Member for Channel {
    const KIND: &'static str = "Channel";
    fn agent_ref(&self) -> &str {
        &self.spec.agent_ref
    }
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    async fn check(&self, agent: &Agent, ctx: &Context) -> Result<(Cond, Value), MemberError> {
        let r = &self.spec.telegram.bot_token_secret_ref;
        let ns = self.namespace().unwrap_or_default();
        let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&r.name)
            .await
            .map_err(|source| MemberError::Read {
                what: format!("Secret {}", r.name),
                kind: Self::KIND,
                name: self.name_any(),
                source,
            })?;
        Ok((
            channel_ready(self, agent, resolve::lookup(secret.as_ref(), &r.key).err()),
            json!({}),
        ))
    }
}

/// Ready of a Channel given what is wrong with its bot token, if anything.
pub fn channel_ready(
    channel: &Channel,
    agent: &Agent,
    token: Option<crate::secrets::SecretProblem>,
) -> Cond {
    match token {
        Some(p) => Cond::is_false(
            CONDITION_READY,
            "SecretInvalid",
            format!(
                "{} (spec.telegram.botTokenSecretRef): {}; put the bot token from @BotFather there",
                channel.spec.telegram.bot_token_secret_ref,
                p.describe()
            ),
        ),
        None => match agent_not_ready(agent) {
            Some(why) => Cond::is_false(CONDITION_READY, "AgentNotReady", why),
            None => Cond::is_true(
                CONDITION_READY,
                "Serving",
                format!("Agent {} answers on this channel", agent.name_any()),
            ),
        },
    }
}
