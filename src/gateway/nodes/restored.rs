//! Nodes across a backup and a restore. In a cluster the NodePairings, not the state dir, say
//! which nodes are approved and what they may run, so a backup taken there carries them
//! ([`crate::backup::NODE_PAIRINGS_FILE`]), and the first start after a restore makes the
//! missing ones again for this Agent: those carried, and the nodes paired in the restored state
//! (a standalone backup) with their exec settings. A node of the old Agent then connects to the
//! new one without pairing again. Standalone, the carried exec settings become the node's where
//! it has none. A NodePairing already in the cluster is left as it is: a restore never
//! overrules what the owner wrote there.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::cluster::ClusterError;
use crate::backup::{NODE_PAIRINGS_FILE, RESTORED, StateFile};
use crate::crd::node_pairing::NodePairingSpec;
use crate::gateway::Gateway;
use crate::protocol::connect::ROLE_NODE;

/// The file's version.
const VERSION: u32 = 1;

/// What [`NODE_PAIRINGS_FILE`] holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Carried {
    version: u32,
    node_pairings: Vec<CarriedPairing>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CarriedPairing {
    name: String,
    spec: NodePairingSpec,
}

/// In a cluster, this Agent's NodePairings as the file a backup carries them in.
pub async fn carried(gw: &Gateway) -> Result<Option<StateFile>, ClusterError> {
    let Some(cluster) = &gw.nodes.cluster else {
        return Ok(None);
    };
    let node_pairings = cluster
        .all()
        .await?
        .iter()
        .map(|np| CarriedPairing {
            name: kube::ResourceExt::name_any(&**np),
            spec: np.spec.clone(),
        })
        .collect();
    let file = Carried {
        version: VERSION,
        node_pairings,
    };
    Ok(Some((
        NODE_PAIRINGS_FILE.into(),
        serde_json::to_vec_pretty(&file).expect("NodePairings serialize"),
    )))
}

/// What the first start after a restore found to adopt, and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// NodePairings made in the cluster.
    pub made: Vec<String>,
    /// Standalone: nodes whose exec settings came from the carried NodePairings.
    pub exec_settings: Vec<String>,
}

/// At the first start on restored state: adopts what the restore brought, then forgets the
/// marker and the carried file. Nothing to do when no restore happened. A failure leaves the
/// marker, so the next start tries again.
pub async fn adopt(gw: &Arc<Gateway>) -> Result<Adopted, String> {
    let dir = gw.state.path();
    if !dir.join(RESTORED).exists() {
        return Ok(Adopted::default());
    }
    let carried: Vec<NodePairingSpec> = match gw.state.read::<Carried>(NODE_PAIRINGS_FILE) {
        Ok(c) => c
            .map(|c| c.node_pairings.into_iter().map(|p| p.spec).collect())
            .unwrap_or_default(),
        Err(e) => return Err(format!("{NODE_PAIRINGS_FILE}: {e}")),
    };
    let mut adopted = Adopted::default();
    match &gw.nodes.cluster {
        Some(cluster) => {
            for spec in wanted(gw, carried)? {
                let short = spec.node_id[..12.min(spec.node_id.len())].to_string();
                if cluster.adopt(spec).await.map_err(|e| e.to_string())? {
                    adopted.made.push(short);
                }
            }
        }
        None => {
            for spec in carried.into_iter().filter(|s| s.approved) {
                let exec = &gw.nodes.local_exec;
                let has = exec
                    .has(&spec.node_id)
                    .map_err(|e| format!("{}: {e}", exec.source()))?;
                if !has {
                    exec.update::<crate::util::state_dir::StateError>(&spec.node_id, |_| {
                        Ok(spec.exec.clone())
                    })
                    .map_err(|e| format!("{}: {e}", exec.source()))?;
                    adopted
                        .exec_settings
                        .push(spec.node_id[..12.min(spec.node_id.len())].to_string());
                }
            }
        }
    }
    for done in [NODE_PAIRINGS_FILE, RESTORED] {
        match std::fs::remove_file(dir.join(done)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("{}: {e}", dir.join(done).display()));
            }
            _ => {}
        }
    }
    Ok(adopted)
}

/// The approved NodePairings the restored state calls for: those carried, then each node
/// paired in the state that none of them names, with its exec settings from the state.
fn wanted(gw: &Gateway, carried: Vec<NodePairingSpec>) -> Result<Vec<NodePairingSpec>, String> {
    let mut wanted: Vec<NodePairingSpec> = carried.into_iter().filter(|s| s.approved).collect();
    let (_, paired) = gw
        .nodes
        .store
        .list(super::now_ms())
        .map_err(|e| e.to_string())?;
    for d in paired {
        let node = d.role == ROLE_NODE || d.roles.iter().any(|r| r == ROLE_NODE);
        if !node || wanted.iter().any(|s| s.node_id == d.device_id) {
            continue;
        }
        let exec = gw
            .nodes
            .local_exec
            .get(&d.device_id)
            .map_err(|e| e.to_string())?;
        wanted.push(NodePairingSpec {
            agent_ref: String::new(),
            node_id: d.device_id,
            public_key: d.public_key,
            display_name: d.display_name,
            approved: true,
            exec,
        });
    }
    Ok(wanted)
}

/// Runs [`adopt`] at start, before the gateway serves, so a node the restore brings back finds
/// its NodePairing when it reconnects; tells what it did. A failure (the API server does not
/// answer) is logged and left for the next start: the gateway serves all the same.
pub async fn adopt_at_start(gw: &Arc<Gateway>) {
    if !gw.state.path().join(RESTORED).exists() {
        return;
    }
    match adopt(gw).await {
        Ok(a) if a.made.is_empty() && a.exec_settings.is_empty() => {
            tracing::info!("restored state: no node to bring back")
        }
        Ok(a) => tracing::warn!(
            node_pairings = ?a.made,
            exec_settings = ?a.exec_settings,
            "restored state: nodes brought back"
        ),
        Err(e) => tracing::error!(
            error = %e,
            "restored state: nodes not brought back; the next start tries again"
        ),
    }
}
