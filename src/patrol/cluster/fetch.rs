//! Reads for the cluster patrol: every list is paged and each page reduced to facts before the
//! next is fetched. A list the gateway may not read, or an API the cluster lacks, becomes a
//! "not checked" line, never a failed patrol.

use std::collections::HashMap;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use super::facts::{self, CertFacts};

/// Objects per page: bounded memory whatever the cluster's size.
pub const PAGE: u32 = 500;

/// Why a read gave nothing, in words for the report.
pub fn explain(what: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{what}: not permitted — the gateway needs clusterAccess: read (the {} ClusterRole)",
            crate::consts::CLUSTER_READER_ROLE
        ),
        kube::Error::Api(s) if s.code == 404 => format!("{what}: not served by this cluster"),
        other => format!("{what}: {other}"),
    }
}

/// Lists every object of `api`, page by page, keeping what `keep` makes of each.
pub async fn list_all<K, T>(
    api: Api<K>,
    field_selector: Option<&str>,
    mut keep: impl FnMut(K) -> Option<T>,
) -> Result<Vec<T>, kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(PAGE);
    if let Some(f) = field_selector {
        lp = lp.fields(f);
    }
    loop {
        let page = api.list(&lp).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        out.extend(page.items.into_iter().filter_map(&mut keep));
        match next {
            Some(token) => lp.continue_token = Some(token),
            None => return Ok(out),
        }
    }
}

fn dynamic(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::all_with(client.clone(), &ar)
}

/// Node usage (millicores, bytes) from metrics-server, when it is installed.
pub async fn node_usage(client: &Client) -> Result<HashMap<String, (u64, u64)>, kube::Error> {
    let api = dynamic(client, "metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes");
    let rows = list_all(api, None, |o: DynamicObject| {
        let usage = o.data.get("usage")?;
        let q = |k: &str| {
            usage
                .get(k)
                .and_then(|v| v.as_str())
                .map(|s| k8s_openapi::apimachinery::pkg::api::resource::Quantity(s.into()))
        };
        Some((
            o.metadata.name.clone()?,
            (
                q("cpu").map(|q| facts::cpu_milli(&q)).unwrap_or(0),
                q("memory").map(|q| facts::bytes(&q)).unwrap_or(0),
            ),
        ))
    })
    .await?;
    Ok(rows.into_iter().collect())
}

/// cert-manager Certificates: their notAfter and Ready condition.
pub async fn certificates(client: &Client) -> Result<Vec<CertFacts>, kube::Error> {
    let api = dynamic(
        client,
        "cert-manager.io",
        "v1",
        "Certificate",
        "certificates",
    );
    list_all(api, None, |o: DynamicObject| {
        let status = o.data.get("status");
        let not_after = status
            .and_then(|s| s.get("notAfter"))
            .and_then(|v| v.as_str())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc());
        let not_ready = status
            .and_then(|s| s.get("conditions"))
            .and_then(|c| c.as_array())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(|t| t.as_str()) == Some("Ready"))
            })
            .filter(|c| c.get("status").and_then(|s| s.as_str()) != Some("True"))
            .map(|c| {
                c.get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("not Ready")
                    .to_string()
            });
        Some(CertFacts {
            source: "certificate",
            namespace: o.metadata.namespace.clone().unwrap_or_default(),
            name: o.metadata.name.clone()?,
            not_after,
            problem: not_ready,
            secret_name: o
                .data
                .get("spec")
                .and_then(|s| s.get("secretName"))
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
    })
    .await
}

/// TLS Secrets: only `tls.crt` is looked at, and only its leaf's notAfter is kept; the rest of
/// the Secret (the private key) is dropped with the page.
pub async fn tls_secrets(client: &Client) -> Result<Vec<CertFacts>, kube::Error> {
    use k8s_openapi::api::core::v1::Secret;
    list_all(
        Api::<Secret>::all(client.clone()),
        Some("type=kubernetes.io/tls"),
        |s: Secret| {
            if s.type_.as_deref() != Some("kubernetes.io/tls") {
                return None;
            }
            let crt = s.data.as_ref().and_then(|d| d.get("tls.crt"));
            let (not_after, problem) = match crt.map(|b| crate::patrol::certs::leaf_not_after(&b.0))
            {
                Some(Ok(t)) => (Some(t), None),
                Some(Err(e)) => (None, Some(format!("tls.crt unreadable: {e}"))),
                None => (None, Some("no tls.crt".to_string())),
            };
            Some(CertFacts {
                source: "secret",
                namespace: kube::ResourceExt::namespace(&s).unwrap_or_default(),
                name: kube::ResourceExt::name_any(&s),
                not_after,
                problem,
                secret_name: None,
            })
        },
    )
    .await
}
