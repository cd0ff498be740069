//! The ConfigMap holding `gateway.json`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::meta;
use crate::consts::{COMPONENT_GATEWAY, CONFIG_FILE};
use crate::crd::Agent;

pub fn gateway_config_map(agent: &Agent, config_json: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta::object_meta(agent, meta::config_map_name(agent), COMPONENT_GATEWAY),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.to_string(),
            config_json.to_string(),
        )])),
        ..Default::default()
    }
}
