//! The Tailscale sidecar (official image, userspace, state in a Secret, serve HTTPS 443 to the
//! gateway) and its serve config.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use super::security::container_security_context;
use super::{env, meta};
use crate::consts::CONTAINER_TAILSCALE;
use crate::crd::Agent;
use crate::crd::agent::TailscaleExpose;

const SERVE_DIR: &str = "/etc/tailscale";
const SERVE_FILE: &str = "serve.json";
/// The official sidecar runs as this user in userspace mode.
const TAILSCALE_USER: i64 = 1000;

/// `ipn.ServeConfig`: HTTPS on 443 proxied to the gateway in the same pod; Funnel when asked.
pub fn serve_config_json(port: u16, funnel: bool) -> String {
    let host = "${TS_CERT_DOMAIN}:443";
    let config = json!({
        "TCP": { "443": { "HTTPS": true } },
        "Web": { host: { "Handlers": { "/": { "Proxy": format!("http://127.0.0.1:{port}") } } } },
        "AllowFunnel": { host: funnel },
    });
    serde_json::to_string_pretty(&config).expect("serve config serializes") + "\n"
}

pub fn serve_config_map(agent: &Agent, ts: &TailscaleExpose) -> ConfigMap {
    ConfigMap {
        metadata: meta::object_meta(agent, meta::tailscale_serve_name(agent), "tailscale"),
        data: Some(BTreeMap::from([(
            SERVE_FILE.to_string(),
            serve_config_json(agent.spec.gateway.port, ts.funnel),
        )])),
        ..Default::default()
    }
}

pub fn sidecar(agent: &Agent, ts: &TailscaleExpose) -> Container {
    let mut envs = vec![
        env::value("TS_USERSPACE", "true"),
        env::value("TS_KUBE_SECRET", &meta::tailscale_state_name(agent)),
        env::value("TS_HOSTNAME", &ts.hostname),
        env::value("TS_SERVE_CONFIG", &format!("{SERVE_DIR}/{SERVE_FILE}")),
        env::value("TS_AUTH_ONCE", "true"),
        env::field("POD_NAME", "metadata.name"),
        env::field("POD_UID", "metadata.uid"),
    ];
    envs.extend(
        ts.auth_key_secret_ref
            .as_ref()
            .map(|key| env::secret("TS_AUTHKEY", key)),
    );
    Container {
        name: CONTAINER_TAILSCALE.into(),
        image: Some(ts.image.clone()),
        env: Some(envs),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "tailscale-serve".into(),
                mount_path: SERVE_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "tailscale-tmp".into(),
                mount_path: "/tmp".into(),
                ..Default::default()
            },
        ]),
        security_context: Some(container_security_context(TAILSCALE_USER)),
        termination_message_policy: Some(super::deployment::TERMINATION_FROM_LOGS.into()),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("10m".into())),
                ("memory".into(), Quantity("32Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".into(),
                Quantity("128Mi".into()),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn volumes(agent: &Agent) -> Vec<Volume> {
    vec![
        Volume {
            name: "tailscale-serve".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: meta::tailscale_serve_name(agent),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "tailscale-tmp".into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_config_proxies_443_to_the_gateway() {
        let v: serde_json::Value = serde_json::from_str(&serve_config_json(18789, false)).unwrap();
        assert_eq!(v["TCP"]["443"]["HTTPS"], true);
        assert_eq!(
            v["Web"]["${TS_CERT_DOMAIN}:443"]["Handlers"]["/"]["Proxy"],
            "http://127.0.0.1:18789"
        );
        assert_eq!(v["AllowFunnel"]["${TS_CERT_DOMAIN}:443"], false);
        let funnel: serde_json::Value =
            serde_json::from_str(&serve_config_json(18789, true)).unwrap();
        assert_eq!(funnel["AllowFunnel"]["${TS_CERT_DOMAIN}:443"], true);
    }
}
