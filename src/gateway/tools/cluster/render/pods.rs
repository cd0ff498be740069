//! Pods as text: kubectl's STATUS (CrashLoopBackOff, Completed, Init:1/2, Terminating…), and
//! per container its image, readiness, restarts, state and last exit. Never env values,
//! commands or arguments: a pod spec may inline tokens in any of them.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod, ResourceRequirements};

use super::{Render, ago, clip, condition, created, heading, name_of};

/// What kubectl prints in a pod's STATUS column.
pub fn status(p: &Pod) -> String {
    let st = p.status.clone().unwrap_or_default();
    let mut reason = st
        .reason
        .clone()
        .or(st.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    let inits = st.init_container_statuses.as_deref().unwrap_or_default();
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        let state = c.state.clone().unwrap_or_default();
        if let Some(t) = &state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = match &t.reason {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            };
        } else if let Some(r) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_ref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else if c.started == Some(true) && is_sidecar(p, &c.name) {
            // A sidecar (restartPolicy Always) that runs has done its part of initialization.
            continue;
        } else {
            reason = format!("Init:{i}/{}", inits.len());
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut running = false;
        for c in st.container_statuses.iter().flatten().rev() {
            let state = c.state.clone().unwrap_or_default();
            if let Some(r) = state
                .waiting
                .and_then(|w| w.reason)
                .filter(|r| !r.is_empty())
            {
                reason = r;
            } else if let Some(t) = state.terminated {
                reason = match t.reason {
                    Some(r) if !r.is_empty() => r,
                    _ if t.signal.unwrap_or(0) != 0 => format!("Signal:{}", t.signal.unwrap_or(0)),
                    _ => format!("ExitCode:{}", t.exit_code),
                };
            } else if state.running.is_some() && c.ready {
                running = true;
            }
        }
        // A container that exited while others run: the pod runs, or is not ready.
        if reason == "Completed" && running {
            let ready = st
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if ready { "Running" } else { "NotReady" }.into();
        }
    }
    if p.metadata.deletion_timestamp.is_some() {
        reason = if st.reason.as_deref() == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn is_sidecar(p: &Pod, name: &str) -> bool {
    p.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
}

/// Ready containers of all, `1/2`.
fn ready(p: &Pod) -> String {
    let statuses = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let total = p.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
    let ready = statuses.iter().filter(|c| c.ready).count();
    format!("{ready}/{}", total.max(statuses.len()))
}

fn restarts(p: &Pod) -> i32 {
    let st = p.status.as_ref();
    st.into_iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .chain(
            st.into_iter()
                .flat_map(|s| s.init_container_statuses.iter().flatten()),
        )
        .map(|c| c.restart_count)
        .sum()
}

impl Render for Pod {
    const HEADER: &'static str = "NAMESPACE/NAME  READY  STATUS  RESTARTS  AGE  NODE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let node = self
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("-");
        format!(
            "{}  {}  {}  {}  {}  {node}",
            name_of(&self.metadata),
            ready(self),
            status(self),
            restarts(self),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("pod", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let (shown, phase) = (status(self), st.phase.as_deref().unwrap_or("Unknown"));
        let phase = if shown == phase {
            String::new()
        } else {
            format!(" (phase {phase})")
        };
        let _ = write!(
            out,
            "\nstatus: {shown}{phase}  ready: {}  restarts: {}",
            ready(self),
            restarts(self)
        );
        let _ = write!(
            out,
            "\nnode: {}  ip: {}  started: {}",
            spec.node_name.as_deref().unwrap_or("-"),
            st.pod_ip.as_deref().unwrap_or("-"),
            ago(now, st.start_time.as_ref())
        );
        if let Some(sa) = spec
            .service_account_name
            .as_deref()
            .filter(|s| *s != "default")
        {
            let _ = write!(out, "\nserviceAccount: {sa}");
        }
        if let Some(m) = &st.message {
            let _ = write!(out, "\nmessage: {}", clip(m, 300));
        }
        let statuses = |list: &Option<Vec<ContainerStatus>>, name: &str| {
            list.iter().flatten().find(|c| c.name == name).cloned()
        };
        let inits = spec.init_containers.iter().flatten();
        for c in inits {
            let s = statuses(&st.init_container_statuses, &c.name);
            out.push_str(&container_line(
                "init",
                &c.name,
                &c.image,
                c.resources.as_ref(),
                s.as_ref(),
                now,
            ));
        }
        for c in &spec.containers {
            let s = statuses(&st.container_statuses, &c.name);
            out.push_str(&container_line(
                "container",
                &c.name,
                &c.image,
                c.resources.as_ref(),
                s.as_ref(),
                now,
            ));
        }
        let bad: Vec<String> = st
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.status != "True")
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_deref(),
                    c.message.as_deref(),
                )
            })
            .collect();
        if !bad.is_empty() {
            let _ = write!(out, "\nconditions not True: {}", bad.join("; "));
        }
        let volumes: Vec<String> = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .map(|c| format!("pvc {}", c.claim_name))
            })
            .collect();
        if !volumes.is_empty() {
            let _ = write!(out, "\nvolumes: {}", volumes.join(", "));
        }
        out
    }
}

/// A container's lines: image, readiness, restarts, resources; its state; its last exit.
fn container_line(
    what: &str,
    name: &str,
    image: &Option<String>,
    resources: Option<&ResourceRequirements>,
    status: Option<&ContainerStatus>,
    now: DateTime<Utc>,
) -> String {
    let mut out = format!("\n{what} {name}: image {}", image.as_deref().unwrap_or("-"));
    if let Some(s) = status {
        let _ = write!(out, "  ready {}  restarts {}", s.ready, s.restart_count);
    }
    if let Some(r) = resources.map(limits).filter(|r| !r.is_empty()) {
        let _ = write!(out, "  {r}");
    }
    let Some(s) = status else {
        return out + "\n  state: not created yet";
    };
    let _ = write!(out, "\n  state: {}", state(s.state.as_ref(), now));
    if let Some(last) = s.last_state.as_ref().filter(|l| l.terminated.is_some()) {
        let _ = write!(out, "\n  last: {}", state(Some(last), now));
    }
    out
}

/// `requests cpu=100m,memory=128Mi limits memory=256Mi`.
fn limits(r: &ResourceRequirements) -> String {
    let part = |name: &str,
                m: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        m.as_ref().filter(|m| !m.is_empty()).map(|m| {
            let kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", v.0)).collect();
            format!("{name} {}", kv.join(","))
        })
    };
    [part("requests", &r.requests), part("limits", &r.limits)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `running since 3d ago`, `waiting CrashLoopBackOff (back-off 5m0s…)`, `terminated Error exit 1
/// 2m ago`.
fn state(s: Option<&ContainerState>, now: DateTime<Utc>) -> String {
    let Some(s) = s else {
        return "unknown".into();
    };
    if let Some(t) = &s.terminated {
        let mut out = format!(
            "terminated {} exit {}",
            t.reason.as_deref().unwrap_or("-"),
            t.exit_code
        );
        if let Some(sig) = t.signal.filter(|s| *s != 0) {
            let _ = write!(out, " signal {sig}");
        }
        let _ = write!(out, " {}", ago(now, t.finished_at.as_ref()));
        if let Some(m) = &t.message {
            let _ = write!(out, " ({})", clip(m, 200));
        }
        out
    } else if let Some(w) = &s.waiting {
        let mut out = format!("waiting {}", w.reason.as_deref().unwrap_or("-"));
        if let Some(m) = &w.message {
            let _ = write!(out, " ({})", clip(m, 200));
        }
        out
    } else if let Some(r) = &s.running {
        format!("running since {}", ago(now, r.started_at.as_ref()))
    } else {
        "unknown".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn status_reads_like_kubectls() {
        let crash = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 5, "image": "x", "imageID": "",
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            {"name": "b", "ready": true, "restartCount": 0, "image": "y", "imageID": "",
             "state": {"running": {}}}]}));
        assert_eq!(status(&crash), "CrashLoopBackOff");
        assert_eq!(ready(&crash), "1/2");
        assert_eq!(restarts(&crash), 5);
        let done = pod(json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
        assert_eq!(status(&done), "Completed");
        let killed = pod(json!({"phase": "Failed", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}));
        assert_eq!(status(&killed), "Signal:9");
        let init = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"running": {}}}]}));
        assert_eq!(status(&init), "Init:0/1");
        let init_crash = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i", "ready": false, "restartCount": 3, "image": "x", "imageID": "",
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}));
        assert_eq!(status(&init_crash), "Init:CrashLoopBackOff");
        let evicted = pod(json!({"phase": "Failed", "reason": "Evicted"}));
        assert_eq!(status(&evicted), "Evicted");
        let mut going = pod(json!({"phase": "Running"}));
        going.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2027-02-14T08:00:00Z".parse().unwrap(),
            ));
        assert_eq!(status(&going), "Terminating");
    }

    #[test]
    fn a_description_holds_no_env_command_or_args() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "TOKEN=hunter2"}},
            "spec": {"containers": [{"name": "a", "image": "x",
                "command": ["sh", "-c", "curl -H 'Authorization: Bearer hunter2'"],
                "args": ["--token=hunter2"],
                "env": [{"name": "API_KEY", "value": "hunter2"}]}]},
            "status": {"phase": "Running"},
        }))
        .unwrap();
        let now = "2027-02-14T08:29:07Z".parse().unwrap();
        let text = p.describe(now) + &p.row(now);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("API_KEY"), "{text}");
        assert!(text.contains("container a: image x"), "{text}");
    }
}
