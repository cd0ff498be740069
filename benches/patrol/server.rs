//! The fixture server (the child process): every collection serialized once, served page by
//! page with `limit` and `continue` like a real API server.

use super::*;

/// One collection: its List kind and its objects, each serialized once.
pub(crate) struct Collection {
    pub(crate) list_kind: &'static str,
    pub(crate) api_version: &'static str,
    pub(crate) items: Vec<Vec<u8>>,
}

impl Collection {
    pub(crate) fn new(
        list_kind: &'static str,
        api_version: &'static str,
        objs: impl Iterator<Item = Value>,
    ) -> Self {
        Self {
            list_kind,
            api_version,
            items: objs.map(|o| serde_json::to_vec(&o).unwrap()).collect(),
        }
    }
    pub(crate) fn bytes(&self) -> usize {
        self.items.iter().map(Vec::len).sum()
    }
    /// A page from `start`, at most `limit` objects, with `continue` while more remain.
    pub(crate) fn page(&self, start: usize, limit: usize) -> Vec<u8> {
        let end = start.saturating_add(limit).min(self.items.len());
        let start = start.min(end);
        let rest = self.items.len() - end;
        let meta = if rest > 0 {
            json!({"resourceVersion": "123456789", "continue": end.to_string(), "remainingItemCount": rest})
        } else {
            json!({"resourceVersion": "123456789"})
        };
        let mut out = format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{meta},\"items\":[",
            self.list_kind, self.api_version
        )
        .into_bytes();
        out.reserve(
            self.items[start..end]
                .iter()
                .map(|i| i.len() + 1)
                .sum::<usize>()
                + 2,
        );
        for (k, item) in self.items[start..end].iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

pub(crate) fn fixture(s: Size) -> HashMap<&'static str, Collection> {
    let counts = deployment_counts(s);
    let mut c = HashMap::new();
    c.insert(
        "/api/v1/nodes",
        Collection::new("NodeList", "v1", (0..s.nodes).map(|n| node_json(s, n))),
    );
    c.insert(
        "/apis/metrics.k8s.io/v1beta1/nodes",
        Collection::new(
            "NodeMetricsList",
            "metrics.k8s.io/v1beta1",
            (0..s.nodes)
                .filter(|&n| n != NOT_READY_NODE)
                .map(node_metrics_json),
        ),
    );
    c.insert(
        "/api/v1/pods",
        Collection::new("PodList", "v1", (0..s.pods).map(|i| pod_json(s, i))),
    );
    c.insert(
        "/apis/apps/v1/deployments",
        Collection::new(
            "DeploymentList",
            "apps/v1",
            counts.iter().enumerate().map(|(j, (replicas, troubled))| {
                workload_json(
                    "Deployment",
                    &deployment_ns(s, j),
                    &deployment_name(j),
                    *replicas,
                    replicas - troubled,
                    seed(31, j),
                )
            }),
        ),
    );
    c.insert(
        "/apis/apps/v1/statefulsets",
        Collection::new(
            "StatefulSetList",
            "apps/v1",
            (0..s.statefulsets()).map(|j| {
                workload_json(
                    "StatefulSet",
                    &statefulset_ns(s, j),
                    &statefulset_name(j),
                    3,
                    3,
                    seed(32, j),
                )
            }),
        ),
    );
    c.insert(
        "/apis/apps/v1/daemonsets",
        Collection::new(
            "DaemonSetList",
            "apps/v1",
            DAEMONSETS.iter().enumerate().map(|(d, (ns, name))| {
                let n = s.nodes as i32;
                workload_json("DaemonSet", ns, name, n, n, seed(6, d))
            }),
        ),
    );
    c.insert(
        "/api/v1/persistentvolumeclaims",
        Collection::new(
            "PersistentVolumeClaimList",
            "v1",
            (0..s.pvcs()).map(|j| pvc_json(s, j)),
        ),
    );
    c.insert(
        "/api/v1/events",
        Collection::new("EventList", "v1", (0..s.events).map(|i| event_json(s, i))),
    );
    c.insert(
        "/api/v1/secrets",
        Collection::new(
            "SecretList",
            "v1",
            (0..s.tls_secrets()).map(|j| tls_secret_json(s, j)),
        ),
    );
    // No cert-manager: /apis/cert-manager.io/v1/certificates answers 404 like a cluster without it.
    c
}

pub(crate) async fn answer(
    State(fixture): State<Arc<HashMap<&'static str, Collection>>>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let json_type = [(header::CONTENT_TYPE, "application/json")];
    let Some(c) = fixture.get(uri.path()) else {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("the server could not find the requested resource ({})", uri.path()),
            "reason": "NotFound", "details": {}, "code": 404});
        return (StatusCode::NOT_FOUND, json_type, status.to_string()).into_response();
    };
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<usize>().ok());
    let page = c.page(
        num("continue").unwrap_or(0),
        num("limit").unwrap_or(usize::MAX),
    );
    (json_type, page).into_response()
}

/// Child: builds the fixture, prints `<port> <bytes of pods> <bytes in all>`, serves until its
/// stdin closes (the bench ended, however it ended).
pub(crate) fn serve(s: Size) {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fixture = fixture(s);
        let pods = fixture["/api/v1/pods"].bytes();
        let all: usize = fixture.values().map(Collection::bytes).sum();
        let app = Router::new().fallback(answer).with_state(Arc::new(fixture));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{port} {pods} {all}").unwrap();
        out.flush().unwrap();
        drop(out);
        axum::serve(listener, app).await.unwrap();
    });
}
