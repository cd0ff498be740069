//! clawops: run a personal AI assistant on Kubernetes — the operator and the gateway (a node
//! host that pairs machines with the gateway is planned).

pub mod api;
pub mod backup;
pub mod cli;
pub mod conditions;
pub mod consts;
pub mod crd;
pub mod exec;
pub mod gateway;
pub mod generate;
pub mod import;
pub mod manifests;
pub mod node;
pub mod operator;
pub mod patrol;
pub mod plan;
pub mod protocol;
pub mod render;
pub mod secrets;
pub mod util;

/// The image this build runs as, and the default gateway image.
pub fn default_image() -> String {
    format!(
        "{}:{}",
        consts::DEFAULT_IMAGE_REPO,
        env!("CARGO_PKG_VERSION")
    )
}
