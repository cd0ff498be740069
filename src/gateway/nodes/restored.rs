//! Nodes across a backup and a restore. In a cluster the NodePairings, not the state dir, say
//! which nodes are approved and what they may run, so a backup taken there carries them
//! ([`crate::backup::NODE_PAIRINGS_FILE`]), and the first start after a restore makes the
//! missing ones again for this Agent: the approved ones carried, or — for a standalone backup —
//! the nodes paired in the restored state whose token was not revoked, with their exec
//! settings. A node of the old Agent then connects to the new one without pairing again.
//! Standalone, the carried exec settings become the node's where it has none. A NodePairing
//! the owner wrote in the namespace stands: a restore never overrules it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cluster::ClusterError;
use crate::backup::{NODE_PAIRINGS_FILE, RESTORED, StateFile};
use crate::crd::node_pairing::NodePairingSpec;
use crate::gateway::Gateway;
use crate::protocol::connect::ROLE_NODE;
use crate::protocol::device::short_id;
use crate::util::state_dir::StateError;

/// The file's version.
const VERSION: u32 = 1;
/// How long the start waits for adoption before it serves anyway and goes on trying behind.
const AT_START: Duration = Duration::from_secs(15);
/// The longest pause between two tries behind.
const RETRY_MAX: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum RestoredError {
    #[error("{file}: {source}")]
    State { file: String, source: StateError },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

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

/// What adopting the restored state did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// NodePairings made (or pending requests approved) in the cluster, by node id prefix.
    pub node_pairings: Vec<String>,
    /// Standalone: nodes whose exec settings came from the carried NodePairings.
    pub exec_settings: Vec<String>,
}

/// Adopts what the restore brought, then forgets the marker and the carried file. Nothing to
/// do when no restore happened. On a failure both stay, for the next try.
pub async fn adopt(gw: &Gateway) -> Result<Adopted, RestoredError> {
    let dir = gw.state.path();
    if !dir.join(RESTORED).exists() {
        return Ok(Adopted::default());
    }
    let carried = gw
        .state
        .read::<Carried>(NODE_PAIRINGS_FILE)
        .map_err(|source| RestoredError::State {
            file: NODE_PAIRINGS_FILE.into(),
            source,
        })?
        .map(|c| c.node_pairings);
    let mut adopted = Adopted::default();
    match &gw.nodes.cluster {
        Some(cluster) => {
            for (name, spec) in wanted(gw, cluster, carried)? {
                let node = short_id(&spec.node_id).to_string();
                if cluster.adopt(&name, spec).await? {
                    adopted.node_pairings.push(node);
                }
            }
        }
        None => {
            let exec = &gw.nodes.local_exec;
            let state_err = |source| RestoredError::State {
                file: exec.source(),
                source,
            };
            let approved = carried.into_iter().flatten().filter(|p| p.spec.approved);
            for CarriedPairing { spec, .. } in approved {
                if !exec.has(&spec.node_id).map_err(state_err)? {
                    exec.update::<StateError>(&spec.node_id, |_| Ok(spec.exec.clone()))
                        .map_err(state_err)?;
                    adopted
                        .exec_settings
                        .push(short_id(&spec.node_id).to_string());
                }
            }
        }
    }
    for done in [NODE_PAIRINGS_FILE, RESTORED] {
        let path = dir.join(done);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(RestoredError::Io {
                    path: path.display().to_string(),
                    source: e,
                });
            }
            _ => {}
        }
    }
    Ok(adopted)
}

/// The NodePairings the restored state calls for, with the name each had. A backup taken in a
/// cluster carries them: they are the whole truth (the state's own device records may still
/// list nodes whose pairing was revoked or deleted there). A standalone backup has only its
/// paired nodes: those whose token was not revoked (a backup without secrets keeps revoked
/// tokens on record and leaves live ones out), with their exec settings from the state.
fn wanted(
    gw: &Gateway,
    cluster: &super::cluster::ClusterPairings,
    carried: Option<Vec<CarriedPairing>>,
) -> Result<Vec<(String, NodePairingSpec)>, RestoredError> {
    if let Some(carried) = carried {
        return Ok(carried
            .into_iter()
            .filter(|p| p.spec.approved)
            .map(|p| (p.name, p.spec))
            .collect());
    }
    let (_, paired) =
        gw.nodes
            .store
            .list(super::now_ms())
            .map_err(|source| RestoredError::State {
                file: super::store::PAIRED_FILE.into(),
                source,
            })?;
    let mut wanted = Vec::new();
    for d in paired {
        let node = d.role == ROLE_NODE || d.roles.iter().any(|r| r == ROLE_NODE);
        let revoked = d
            .tokens
            .get(ROLE_NODE)
            .is_some_and(|t| t.revoked_at_ms.is_some());
        if !node || revoked {
            continue;
        }
        let exec =
            gw.nodes
                .local_exec
                .get(&d.device_id)
                .map_err(|source| RestoredError::State {
                    file: gw.nodes.local_exec.source(),
                    source,
                })?;
        let name = cluster.name_of(&d.device_id);
        wanted.push((
            name,
            NodePairingSpec {
                agent_ref: String::new(),
                node_id: d.device_id,
                public_key: d.public_key,
                display_name: d.display_name,
                approved: true,
                exec,
            },
        ));
    }
    Ok(wanted)
}

fn tell(adopted: &Adopted) {
    if adopted.node_pairings.is_empty() && adopted.exec_settings.is_empty() {
        tracing::info!("restored state: no node to bring back");
    } else {
        tracing::warn!(
            node_pairings = ?adopted.node_pairings,
            exec_settings = ?adopted.exec_settings,
            "restored state: nodes brought back"
        );
    }
}

/// At start, before the gateway serves, so a node the restore brings back finds its
/// NodePairing when it reconnects: adopts what the restore brought. When that cannot be done
/// in [`AT_START`] (the API server does not answer), the gateway serves anyway and goes on
/// trying behind, backing off; the handle is that task, to stop at shutdown.
pub async fn adopt_at_start(gw: &Arc<Gateway>) -> Option<tokio::task::JoinHandle<()>> {
    if !gw.state.path().join(RESTORED).exists() {
        return None;
    }
    let first = match tokio::time::timeout(AT_START, adopt(gw)).await {
        Ok(Ok(adopted)) => {
            tell(&adopted);
            return None;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("not done in {} s", AT_START.as_secs()),
    };
    tracing::error!(error = %first, "restored state: nodes not brought back yet; trying again");
    let gw = gw.clone();
    Some(tokio::spawn(async move {
        let mut pause = Duration::from_secs(5);
        loop {
            tokio::time::sleep(pause).await;
            match adopt(&gw).await {
                Ok(adopted) => return tell(&adopted),
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?pause, "restored state: nodes not brought back yet")
                }
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    }))
}
