//! Admission of a node that sent `connect`: its proof (the handshake), its token, and the
//! pairing gate — the gateway's own record, or in a cluster the node's NodePairing — with the
//! owner asked on Telegram when a new device wants to pair.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::handshake::{self, CLOSE_POLICY, Proven, Refusal};
use super::now_ms;
use super::store::{Gate, PairedDevice, PendingDevice};
use crate::gateway::Gateway;
use crate::gateway::prompts::Choice;
use crate::gateway::telegram::buttons;
use crate::protocol::connect::ConnectParams;
use crate::protocol::frames::{ErrorShape, codes};
use crate::util::uuid::uuid_v4 as uuid;

/// Proves the device, checks its token and passes the pairing gate.
pub(super) async fn admit(
    gw: &Arc<Gateway>,
    params: &ConnectParams,
    nonce: &str,
    ip: IpAddr,
) -> Result<(Proven, Box<PairedDevice>), Refusal> {
    let now = now_ms();
    let proven = handshake::check(params, nonce, now)?;
    let nodes = &gw.nodes;
    // The signature over this connection's nonce proves the device holds its key; a paired
    // device needs nothing more. A token, when sent, must be right: the device's own, or the
    // gateway token (which Clawdbot node hosts send for their first pairing). One restored
    // without its tokens cannot be checked; its key is proven, and it gets a new one.
    if let Some(t) = params.auth.as_ref().and_then(|a| a.token.as_deref())
        && !nodes
            .store
            .verify_token(&proven.device_id, &proven.role, t, now)
        && !nodes
            .store
            .awaits_token(&proven.device_id, &proven.public_key, &proven.role, now)
        && let Err(denied) = gw.auth.check(ip, Some(t), Instant::now())
    {
        return Err(Refusal::invalid(
            codes::INVALID_REQUEST,
            format!(
                "unauthorized: {}; a revoked node must be approved again",
                denied.message()
            ),
        ));
    }
    // Only new requests count against the address: paired nodes behind the same NAT or
    // proxy are never locked out by strangers asking.
    let limit = nodes.pair_limit.check(ip, Instant::now());
    let request = PendingDevice {
        request_id: uuid(),
        device_id: proven.device_id.clone(),
        public_key: proven.public_key.clone(),
        display_name: params.client.display_name.clone(),
        platform: params.client.platform.clone(),
        client_id: params.client.id.clone(),
        client_mode: params.client.mode.clone(),
        role: proven.role.clone(),
        roles: vec![proven.role.clone()],
        scopes: proven.scopes.clone(),
        remote_ip: Some(ip.to_string()),
        silent: false,
        is_repair: false,
        ts: now,
    };
    let gate = match &nodes.cluster {
        None => match nodes.store.reissue(&request, now) {
            Ok(Some(device)) => Ok(Gate::Paired(Box::new(device))),
            Ok(None) => nodes.store.gate(request, now, limit.is_ok()),
            Err(e) => Err(e),
        }
        .map_err(|e| e.to_string()),
        Some(cluster) => cluster_gate(gw, cluster, request, now, limit.is_ok()).await,
    }
    .map_err(|e| {
        tracing::error!(error = %e, "pairing state unusable");
        Refusal::invalid(
            codes::UNAVAILABLE,
            "the gateway cannot read its pairing state; see its log",
        )
    })?;
    match gate {
        Gate::Paired(device) => Ok((proven, device)),
        Gate::Pending {
            request_id,
            created,
        } => {
            let kubectl = nodes
                .cluster
                .as_ref()
                .map(|c| c.approve_command(&proven.device_id));
            if created {
                nodes.pair_limit.record(ip, Instant::now());
                let name = params
                    .client
                    .display_name
                    .clone()
                    .unwrap_or_else(|| "-".into());
                ask_owner_to_pair(
                    gw,
                    &request_id,
                    &name,
                    &proven.device_id,
                    &params.client.platform,
                    ip,
                );
                let kubectl = kubectl
                    .as_deref()
                    .map(|k| format!(" or `{k}`"))
                    .unwrap_or_default();
                tracing::warn!(
                    node = %params.describe(),
                    %ip,
                    request = %request_id,
                    "a node asks to pair: approve it with `clawops nodes approve {}`{kubectl}",
                    &proven.device_id[..12]
                );
            }
            // The node prints how its owner approves it, kubectl included in a cluster.
            let mut details = json!({ "requestId": request_id });
            if let Some(k) = kubectl {
                details["approveCommand"] = json!(k);
            }
            Err(Refusal {
                error: Some(Box::new(
                    ErrorShape::new(codes::NOT_PAIRED, "pairing required").with_details(details),
                )),
                code: CLOSE_POLICY,
                reason: "pairing required".into(),
            })
        }
        Gate::Limited => Err(Refusal::invalid(
            codes::UNAVAILABLE,
            format!(
                "too many pairing requests from this address; retry in {} s",
                limit.err().unwrap_or_default().as_secs().max(1)
            ),
        )),
        Gate::Full => Err(Refusal::invalid(
            codes::UNAVAILABLE,
            "too many nodes wait for approval; approve or reject some with `clawops nodes list`",
        )),
    }
}

/// In a cluster the device's NodePairing decides: approved (with this key) pairs it; anything
/// else — not approved, or none, which a pending request then creates — leaves it pending.
async fn cluster_gate(
    gw: &Gateway,
    cluster: &super::cluster::ClusterPairings,
    request: PendingDevice,
    now: i64,
    may_ask: bool,
) -> Result<Gate, String> {
    let store = &gw.nodes.store;
    let found = cluster
        .find(&request.device_id)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(np) = &found
        && np.spec.approved
        && np.spec.public_key == request.public_key
    {
        return store
            .pair(request, now)
            .map(|d| Gate::Paired(Box::new(d)))
            .map_err(|e| e.to_string());
    }
    // The NodePairing does not approve it: whatever the gateway's own record says, it waits.
    let _ = store.revoke(&request.device_id, &request.role, now);
    let gate = store
        .gate(request.clone(), now, may_ask)
        .map_err(|e| e.to_string())?;
    if found.is_none()
        && matches!(gate, Gate::Pending { .. })
        && let Err(e) = cluster.request(&request).await
    {
        tracing::error!(error = %e, "pending NodePairing not created");
    }
    Ok(gate)
}

/// Tells the owners on Telegram, with Approve / Reject buttons.
fn ask_owner_to_pair(
    gw: &Arc<Gateway>,
    request_id: &str,
    name: &str,
    node_id: &str,
    platform: &str,
    ip: IpAddr,
) {
    const CHOICES: [Choice; 2] = [
        Choice {
            label: "Approve",
            key: "approve",
        },
        Choice {
            label: "Reject",
            key: "reject",
        },
    ];
    let text = format!(
        "🖥 Node {name} ({}) on {platform} from {ip} asks to pair. Approve it to let it connect; what it may run is decided by its own exec policy.",
        &node_id[..12]
    );
    let (g, request) = (gw.clone(), request_id.to_string());
    let id = gw.prompts.open(
        text,
        CHOICES.to_vec(),
        Box::new(move |_, key, by| {
            let approve = key == "approve";
            Box::pin(async move {
                let outcome = if approve {
                    match g.nodes.approve(&request).await {
                        Ok(_) => format!("✅ Approved by {by}: it connects on its next try."),
                        Err(e) => format!("Not approved: {e}"),
                    }
                } else {
                    match g.nodes.reject(&request).await {
                        Ok(_) => format!("❌ Rejected by {by}."),
                        Err(e) => format!("Not rejected: {e}"),
                    }
                };
                tracing::info!(request = %request, %by, %outcome, "node pairing answered on Telegram");
                outcome
            })
        }),
    );
    let g = gw.clone();
    tokio::spawn(async move {
        buttons::ask_owners(&g, &id).await;
        // The request expires; so does the question.
        tokio::time::sleep(Duration::from_millis(super::store::PENDING_TTL_MS as u64)).await;
        if let Some(closed) = g
            .prompts
            .close(&id, "⏱ Expired: the node asks again on its next try.")
        {
            buttons::show(&g, &closed).await;
        }
    });
}
