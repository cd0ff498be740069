//! The PersistentVolumeClaim for gateway state.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::meta;
use crate::consts::COMPONENT_GATEWAY;
use crate::crd::Agent;

pub fn state_pvc(agent: &Agent) -> PersistentVolumeClaim {
    let storage = &agent.spec.gateway.storage;
    PersistentVolumeClaim {
        metadata: meta::object_meta(agent, meta::state_pvc_name(agent), COMPONENT_GATEWAY),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(storage.size.clone()),
                )])),
                limits: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
