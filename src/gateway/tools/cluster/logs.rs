//! `pod_logs`: the last lines of a container's log, bounded in lines and in bytes (by the API
//! server, and again here whatever it sends). Logs can hold anything a program printed, so the
//! Agent opts in to this tool.

use futures::{AsyncReadExt, TryFutureExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client};

use super::read::Read;
use crate::gateway::tools::ToolError;

/// Bytes of log asked for: ample for 200 lines of a chatty program, small for a model's context.
pub const LIMIT_BYTES: usize = 16 * 1024;

pub struct Logs<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: Option<&'a str>,
    pub tail_lines: u32,
    pub previous: bool,
}

pub async fn read(client: &Client, l: Logs<'_>) -> Result<String, ToolError> {
    let r = Read {
        verb: "get",
        resource: "pods/log",
        singular: "pod",
        namespace: Some(l.namespace),
        name: Some(l.pod),
    };
    let lp = LogParams {
        container: l.container.map(str::to_string),
        limit_bytes: Some(LIMIT_BYTES as i64),
        previous: l.previous,
        tail_lines: Some(l.tail_lines.into()),
        ..Default::default()
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), l.namespace);
    let mut bytes = Vec::new();
    api.log_stream(l.pod, &lp)
        .map_err(|e| r.error(e))
        .await?
        // An API server that ignores limitBytes still cannot flood the model.
        .take(LIMIT_BYTES as u64)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ToolError::Failed(format!("the log stream broke off: {e}")))?;
    Ok(render(&l, &bytes))
}

/// The heading and the log text (invalid UTF-8, as a cut at the byte limit can make, replaced).
fn render(l: &Logs<'_>, bytes: &[u8]) -> String {
    let container = l
        .container
        .map(|c| format!(" container {c}"))
        .unwrap_or_default();
    let run = if l.previous { " (previous run)" } else { "" };
    let mut out = format!(
        "log of pod {}/{}{container}{run}, last {} lines at most:",
        l.namespace, l.pod, l.tail_lines
    );
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.is_empty() {
        out.push_str("\n(no log lines)");
    } else {
        out.push('\n');
        out.push_str(text);
    }
    if bytes.len() >= LIMIT_BYTES {
        out.push_str("\n(cut at 16 KiB; ask for fewer tailLines to see whole lines)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_in_the_middle_of_a_character_is_no_error() {
        let l = Logs {
            namespace: "prod",
            pod: "web",
            container: Some("app"),
            tail_lines: 50,
            previous: true,
        };
        let mut bytes = "ok\n".repeat(LIMIT_BYTES / 3).into_bytes();
        bytes.truncate(LIMIT_BYTES - 1);
        bytes.push(0xE2);
        let text = render(&l, &bytes);
        assert!(
            text.starts_with(
                "log of pod prod/web container app (previous run), last 50 lines at most:\nok\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("(cut at 16 KiB; ask for fewer tailLines to see whole lines)"));
        assert_eq!(
            render(&l, b"\n"),
            "log of pod prod/web container app (previous run), last 50 lines at most:\n(no log lines)"
        );
    }
}
