//! What the node answers when the gateway invokes it: `system.run` through the node's own exec
//! policy, and `system.which` (the real path of each program, as its allowlist matches them).

use serde_json::{Value, json};

use super::dedupe::Dedupe;
use super::run;
use crate::exec::Host;
use crate::protocol::frames::{ErrorShape, codes};
use crate::protocol::invoke::{InvokeRequest, InvokeResult, RunParams, SYSTEM_RUN, SYSTEM_WHICH};
use crate::util::state_dir::StateDir;

/// The commands this node serves.
pub const COMMANDS: &[&str] = &[SYSTEM_RUN, SYSTEM_WHICH];

/// Runs one invoke and words its result; a `system.run` whose idempotency key was run already
/// gets that run's result.
pub async fn invoke(
    state: &StateDir,
    node_id: &str,
    req: InvokeRequest,
    dedupe: &Dedupe,
) -> InvokeResult {
    let params: Value = req
        .params_json
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    if req.command == SYSTEM_RUN {
        let what = params["command"].to_string();
        let (key, id) = (req.idempotency_key.clone(), req.id.clone());
        return dedupe
            .once(
                key.as_deref(),
                &what,
                &id,
                answer(state, node_id, req, params),
            )
            .await;
    }
    answer(state, node_id, req, params).await
}

async fn answer(
    state: &StateDir,
    node_id: &str,
    req: InvokeRequest,
    params: Value,
) -> InvokeResult {
    let outcome: Result<Value, ErrorShape> = match req.command.as_str() {
        SYSTEM_RUN => match serde_json::from_value::<RunParams>(params) {
            Ok(p) => run::system_run(state, p)
                .await
                .map(|o| serde_json::to_value(o).expect("output serializes")),
            Err(e) => Err(ErrorShape::new(
                codes::INVALID_REQUEST,
                format!("system.run params: {e}"),
            )),
        },
        SYSTEM_WHICH => {
            let host = super::host_fs::MachineHost::from_env();
            let bins: serde_json::Map<String, Value> = params
                .get("bins")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(|b| {
                    host.resolve(b, None)
                        .map(|p| (b.to_string(), json!(p.to_string_lossy())))
                })
                .collect();
            Ok(json!({ "bins": bins }))
        }
        _ => Err(ErrorShape::new(codes::UNAVAILABLE, "command not supported")),
    };
    match outcome {
        Ok(payload) => InvokeResult {
            id: req.id,
            node_id: node_id.into(),
            ok: true,
            payload: None,
            payload_json: Some(payload.to_string()),
            error: None,
        },
        Err(error) => InvokeResult {
            id: req.id,
            node_id: node_id.into(),
            ok: false,
            payload: None,
            payload_json: None,
            error: Some(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frames::Frame;

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// An invoke request from the gateway edited anywhere: read into what the node's policy
        /// looks at (the command line), or dropped as the node drops it; never a panic.
        #[test]
        fn fuzz_invoke_requests(edits in crate::util::fuzz::edits()) {
            let seed = r#"{"type":"event","event":"node.invoke.request","payload":{"id":"inv-1","nodeId":"ab12","command":"system.run","paramsJSON":"{\"command\":[\"/bin/sh\",\"-lc\",\"uptime && df -h\"],\"rawCommand\":\"uptime && df -h\",\"timeoutMs\":60000,\"runId\":\"r1\",\"approvalDecision\":\"allow-once\"}","idempotencyKey":"k1"}}"#;
            let text = crate::util::fuzz::apply(seed, &edits);
            if let Ok(Frame::Event(e)) = serde_json::from_str::<Frame>(&text)
                && let Some(req) = e
                    .payload
                    .and_then(|p| serde_json::from_value::<InvokeRequest>(p).ok())
            {
                let params: Value = req
                    .params_json
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok())
                    .unwrap_or(Value::Null);
                if let Ok(p) = serde_json::from_value::<RunParams>(params)
                    && let Some(raw) = &p.raw_command
                {
                    let _ = crate::exec::analyze::shell(raw);
                }
            }
        }
    }
}
