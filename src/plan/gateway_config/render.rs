//! Renders `gateway.json` from an Agent and its Channels and Crons: a pure function.

use kube::ResourceExt;

use super::*;
use crate::consts::{ENV_GATEWAY_TOKEN, GATEWAY_PORT};
use crate::crd::{Agent, Channel, Cron};

/// What the config is rendered from.
pub struct ConfigInputs<'a> {
    pub agent: &'a Agent,
    pub channels: &'a [Channel],
    pub crons: &'a [Cron],
    /// External URL of the gateway, when exposed and known.
    pub public_url: Option<String>,
    /// Addresses trusted to set forwarded headers beyond the Agent's own list.
    pub extra_trusted_proxies: &'a [&'a str],
    /// Set in a cluster: where the gateway mirrors status.
    pub namespace: Option<String>,
}

pub fn render(inputs: &ConfigInputs<'_>) -> GatewayConfig {
    let agent = inputs.agent;
    let spec = &agent.spec;
    let mut trusted_proxies = spec.gateway.trusted_proxies.clone();
    for extra in inputs.extra_trusted_proxies {
        if !trusted_proxies.iter().any(|p| p == extra) {
            trusted_proxies.push((*extra).to_string());
        }
    }
    GatewayConfig {
        version: CONFIG_VERSION,
        agent: AgentConfig {
            id: agent.name_any(),
            name: spec.identity.name.clone(),
            emoji: spec.identity.emoji.clone(),
            persona: spec.identity.persona.clone(),
            model: ModelConfig {
                primary: spec.model.primary.clone(),
                fallbacks: spec.model.fallbacks.clone(),
                api_key_env: spec.model.api_key_secret_ref.as_ref().map(|r| r.env_name()),
                base_url: spec.model.base_url.clone(),
                endpoint: spec.model.endpoint,
                thinking: spec.model.thinking,
                timeout_seconds: spec.model.timeout_seconds,
            },
            max_concurrent: spec.max_concurrent,
            heartbeat: HeartbeatConfig {
                every: spec
                    .heartbeat
                    .as_ref()
                    .map_or_else(|| "30m".to_string(), |h| h.every.clone()),
            },
            user_timezone: spec.user_timezone.clone(),
            time_format: spec.time_format,
            cluster_access: spec.cluster_access,
            alerts: spec
                .alerts
                .as_ref()
                .filter(|a| a.enabled)
                .map(|a| AlertsConfig {
                    deliver: DeliverConfig {
                        channel: a.deliver.channel_ref.clone(),
                        to: a.deliver.to.clone(),
                    },
                    cool_down: a.cool_down.clone(),
                }),
            tools: spec.tools.clone(),
        },
        gateway: ServerConfig {
            port: if spec.gateway.port == 0 {
                GATEWAY_PORT
            } else {
                spec.gateway.port
            },
            bind: "0.0.0.0".into(),
            auth: AuthConfig {
                token_env: ENV_GATEWAY_TOKEN.into(),
            },
            trusted_proxies,
            public_url: inputs.public_url.clone(),
            control_ui: spec.gateway.control_ui.clone(),
        },
        channels: inputs
            .channels
            .iter()
            .map(|c| {
                let t = &c.spec.telegram;
                ChannelConfig {
                    name: c.name_any(),
                    telegram: TelegramConfig {
                        bot_token_env: t.bot_token_secret_ref.env_name(),
                        dm_policy: t.dm_policy,
                        group_policy: t.group_policy,
                        allow_from: t.allow_from.clone(),
                        groups: t.groups.clone(),
                        api_url: t.api_url.clone(),
                    },
                }
            })
            .collect(),
        crons: inputs
            .crons
            .iter()
            .map(|c| CronConfig {
                name: c.name_any(),
                schedule: c.spec.schedule.clone(),
                time_zone: c
                    .spec
                    .time_zone
                    .clone()
                    .unwrap_or_else(|| spec.user_timezone.clone()),
                suspend: c.spec.suspend,
                message: c.spec.message.clone(),
                patrol: c.spec.patrol.clone(),
                deliver: c.spec.deliver.as_ref().map(|d| DeliverConfig {
                    channel: d.channel_ref.clone(),
                    to: d.to.clone(),
                }),
            })
            .collect(),
        kubernetes: inputs.namespace.clone().map(|namespace| KubernetesConfig {
            namespace,
            agent: agent.name_any(),
        }),
    }
}
