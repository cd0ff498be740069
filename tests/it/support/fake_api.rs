//! An in-memory Kubernetes API server behind a `tower-test` mock: it keeps objects, answers
//! GET, LIST (label and field selectors, limit and continue), PATCH (apply, merge, JSON patch),
//! POST, DELETE and pod logs like the real one does for what clawops uses, serves
//! `metrics.k8s.io` only once metrics were stored (as if metrics-server were installed), and
//! records every request so tests can assert on them. A watch from a resourceVersion gets what
//! happened since (or 410 once that is compacted away); served over HTTP it can go down and come
//! back like a restarting API server; its garbage collector runs when a test asks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use kube::client::Body;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::selectors::{fields_match, labels_match};

type ReplyBody = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A JSON answer, plain text (pod logs), or a watch stream that stays open and carries events.
enum Reply {
    Json(StatusCode, Value),
    Text(StatusCode, String),
    Watch(mpsc::UnboundedReceiver<Bytes>),
}

impl Reply {
    fn content_type(&self) -> &'static str {
        match self {
            Reply::Text(..) => "text/plain",
            _ => "application/json",
        }
    }
}

impl From<(StatusCode, Value)> for Reply {
    fn from((code, body): (StatusCode, Value)) -> Self {
        Reply::Json(code, body)
    }
}

struct Watcher {
    collection: String,
    selector: String,
    /// Asked for `PartialObjectMetadata`: events carry metadata only.
    metadata_only: bool,
    tx: mpsc::UnboundedSender<Bytes>,
}

/// Whether a request asks, like `Api<PartialObjectMeta<K>>`, for metadata only.
fn wants_metadata(accept: &str) -> bool {
    accept.contains("as=PartialObjectMetadata")
}

/// An object as the API server returns it to a metadata-only request.
fn metadata_of(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"].clone()})
}

/// One request the client made.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Option<Value>,
}

impl Recorded {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    log: Vec<Recorded>,
    resource_version: u64,
    watchers: Vec<Watcher>,
    /// Recent events, oldest first, for watches that start from a resourceVersion: as a real
    /// API server's watch cache does, they get what happened after it (a list followed by a
    /// watch misses nothing in between), or 410 Expired when that is no longer kept.
    history: std::collections::VecDeque<Event>,
    /// Watches from a resourceVersion below this get 410: what followed it is gone.
    compacted: u64,
    /// Requests answered with an error: (method, path, code, message).
    rejections: Vec<(String, String, u16, String)>,
    /// Added to every write, as a real API server's etcd round trip would.
    write_latency: std::time::Duration,
    /// The delay actually added to writes so far, and how many writes it was added to.
    latency_added: (std::time::Duration, u32),
    /// Stand in for the Deployment and Ingress controllers: a written Deployment reports its
    /// pod available, an Ingress its load balancer address.
    controllers: bool,
    /// Container logs by (pod path, container, previous run).
    logs: BTreeMap<(String, String, bool), String>,
}

/// Events a watch is told of, kept for watches that start from an older resourceVersion.
const HISTORY: usize = 20_000;

/// One watch event: the object as it was then.
struct Event {
    rv: u64,
    key: String,
    kind: &'static str,
    obj: Value,
}

impl Event {
    /// The lines the event is sent as: in full, and as metadata only.
    fn lines(&self) -> (Bytes, Bytes) {
        let line =
            |obj: &Value| Bytes::from(format!("{}\n", json!({"type": self.kind, "object": obj})));
        (line(&self.obj), line(&metadata_of(&self.obj)))
    }
}

impl Watcher {
    /// Sends the event if the watch selects it; false once the watch is gone.
    fn tell(&self, e: &Event, (line, meta_line): &(Bytes, Bytes)) -> bool {
        let selected = labels_match(&e.obj, &self.selector).unwrap_or(false);
        if !in_collection(&e.key, &self.collection) || !selected {
            return true;
        }
        let line = if self.metadata_only { meta_line } else { line };
        self.tx.send(line.clone()).is_ok()
    }
}

/// The event ending a watch whose resourceVersion is too old, as after an etcd compaction.
fn gone() -> Bytes {
    Bytes::from(format!(
        "{}\n",
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410}})
    ))
}

impl State {
    /// Stores (or with `None` removes) an object and tells the watchers of its collection.
    fn put(&mut self, key: &str, obj: Option<Value>) {
        let (kind, mut obj) = match obj {
            Some(o) => {
                let kind = if self.objects.insert(key.to_string(), o.clone()).is_some() {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                (kind, o)
            }
            None => match self.objects.remove(key) {
                Some(o) => ("DELETED", o),
                None => return,
            },
        };
        // A deletion is a change of its own, with a resourceVersion of its own.
        if kind == "DELETED" {
            self.resource_version += 1;
            obj["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        }
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.resource_version);
        let event = Event {
            rv,
            key: key.to_string(),
            kind,
            obj,
        };
        let lines = event.lines();
        self.watchers.retain(|w| w.tell(&event, &lines));
        self.history.push_back(event);
        if self.history.len() > HISTORY
            && let Some(dropped) = self.history.pop_front()
        {
            self.compacted = dropped.rv;
        }
    }

    /// Starts a watch from `since` (a resourceVersion; `None` for from now on): first what
    /// happened after it, or 410 when that is no longer known.
    fn watch(&mut self, w: Watcher, since: Option<u64>) {
        if let Some(rv) = since {
            if rv < self.compacted {
                let _ = w.tx.send(gone());
                return;
            }
            for e in self.history.iter().filter(|e| e.rv > rv) {
                w.tell(e, &e.lines());
            }
        }
        self.watchers.push(w);
    }
}

impl State {
    /// Deletes an object as the API server does: one with finalizers only gets its
    /// deletionTimestamp (and stays, `Some(Some(it))`, until they are removed); one without goes
    /// (`Some(None)`), and watchers are told either way. `None` when there is no such object.
    fn delete(&mut self, key: &str) -> Option<Option<Value>> {
        let mut o = self.objects.get(key)?.clone();
        if o["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
        {
            if o["metadata"]["deletionTimestamp"].is_null() {
                o["metadata"]["deletionTimestamp"] = json!("2026-11-21T01:00:00Z");
                self.put(key, Some(o.clone()));
            }
            Some(Some(o))
        } else {
            self.put(key, None);
            Some(None)
        }
    }

    /// Whether an owner reference of the object at `key` names an object that exists (by uid,
    /// as the garbage collector checks: a recreated owner of the same name is another owner).
    /// `None` when it cannot be resolved: a cluster-scoped object cannot be owned by a
    /// namespaced one.
    fn owner_exists(&self, key: &str, owner: &Value) -> Option<bool> {
        let obj = &self.objects[key];
        let kind = owner["kind"].as_str().unwrap_or_default();
        let mut probe = json!({"apiVersion": owner["apiVersion"], "kind": kind,
            "metadata": {"name": owner["name"]}});
        match obj["metadata"]["namespace"].as_str() {
            Some(ns) => probe["metadata"]["namespace"] = json!(ns),
            None if !CLUSTER_SCOPED.contains(&kind) => return None,
            None => {}
        }
        Some(
            self.objects
                .get(&path_of(&probe))
                .is_some_and(|o| o["metadata"]["uid"] == owner["uid"]),
        )
    }
}

#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    /// Set by [`FakeApi::serve_http`].
    http: Arc<Mutex<Option<Http>>>,
}

/// The fake served over HTTP: where, what, and the connections open, so it can go down and come
/// back on the same address.
struct Http {
    addr: std::net::SocketAddr,
    app: axum::Router,
    /// The accept loop; `None` while down. Ending it closes the listening socket.
    server: Option<tokio::task::JoinHandle<()>>,
    conns: Arc<Mutex<Conns>>,
}

/// The sockets of the open connections. axum serves each connection in a task of its own that
/// cannot be reached from outside, so an outage cuts them at the socket.
#[derive(Default)]
struct Conns {
    next: u64,
    open: std::collections::HashMap<u64, std::os::fd::RawFd>,
}

impl Conns {
    /// Shuts every open connection down both ways: the client reads the end of the stream in
    /// the middle of a watch or an answer, and axum's task sees its socket fail and ends.
    fn cut(&mut self) {
        for fd in self.open.values() {
            // SAFETY: `fd` is the socket of a live `Tracked` connection: it is removed from
            // `open` (under this lock) before the connection's socket is closed, so it cannot
            // have been closed and reused. shutdown(2) does not close it.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
    }
}

/// Serves `app` on `listener`, keeping the connections' sockets in `conns`.
fn serve_tracked(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    conns: Arc<Mutex<Conns>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        axum::serve(TrackedListener { listener, conns }, app)
            .await
            .unwrap()
    })
}

struct TrackedListener {
    listener: tokio::net::TcpListener,
    conns: Arc<Mutex<Conns>>,
}

impl axum::serve::Listener for TrackedListener {
    type Io = Tracked;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Tracked, std::net::SocketAddr) {
        loop {
            // As axum's own TcpListener does, an accept error (too many open files, a connection
            // reset before it was accepted) is retried.
            let Ok((stream, addr)) = self.listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let mut c = self.conns.lock().unwrap();
            c.next += 1;
            let id = c.next;
            c.open.insert(id, std::os::fd::AsRawFd::as_raw_fd(&stream));
            let conns = self.conns.clone();
            return (Tracked { stream, id, conns }, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

/// A served connection, known to [`Conns`] for as long as its socket is open.
struct Tracked {
    stream: tokio::net::TcpStream,
    id: u64,
    conns: Arc<Mutex<Conns>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Runs before `stream` is dropped (and its socket closed).
        self.conns.lock().unwrap().open.remove(&self.id);
    }
}

impl tokio::io::AsyncRead for Tracked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Tracked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

const CLUSTER_SCOPED: &[&str] = &[
    "NodeMetrics",
    "ClusterRole",
    "ClusterRoleBinding",
    "Namespace",
    "Node",
    "PersistentVolume",
];

fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.as_str() {
        "ingress" => "ingresses".into(),
        "networkpolicy" => "networkpolicies".into(),
        "nodemetrics" => "nodes".into(),
        "podmetrics" => "pods".into(),
        _ => format!("{lower}s"),
    }
}

/// The item path of an object, from its apiVersion, kind, namespace and name.
pub fn path_of(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let name = obj["metadata"]["name"].as_str().expect("metadata.name");
    let prefix = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    if CLUSTER_SCOPED.contains(&kind) {
        format!("{prefix}/{}/{name}", plural(kind))
    } else {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        format!("{prefix}/namespaces/{ns}/{}/{name}", plural(kind))
    }
}

/// Splits a request path into (collection path, name, subresource).
fn split(path: &str) -> (String, Option<String>, Option<String>) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let prefix_len = if segs[0] == "api" { 2 } else { 3 };
    let (prefix, rest) = segs.split_at(prefix_len);
    let (coll_len, name_at) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (3, 3)
    } else {
        (1, 1)
    };
    let coll = format!("/{}/{}", prefix.join("/"), rest[..coll_len].join("/"));
    (
        coll,
        rest.get(name_at).map(|s| s.to_string()),
        rest.get(name_at + 1).map(|s| s.to_string()),
    )
}

/// Whether the object at `key` is listed by `coll`: directly, or, for a collection without a
/// namespace (`/api/v1/pods`), in any namespace.
fn in_collection(key: &str, coll: &str) -> bool {
    if key
        .strip_prefix(&format!("{coll}/"))
        .is_some_and(|rest| !rest.contains('/'))
    {
        return true;
    }
    let (prefix, plural) = coll.rsplit_once('/').unwrap_or_default();
    key.strip_prefix(&format!("{prefix}/namespaces/"))
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, rest)| {
            rest.strip_prefix(&format!("{plural}/"))
                .is_some_and(|name| !name.contains('/'))
        })
}

fn status(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The reason of a Status the API server answers with `code`.
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Invalid",
    }
}

/// Metrics are served by metrics-server through an APIService: without it the API server does
/// not know the group and answers 404.
const METRICS: &str = "/apis/metrics.k8s.io/";

/// RFC 7386 JSON merge patch, for fixtures.
pub fn merge_into(target: &mut Value, patch: &Value) {
    merge(target, patch)
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// RFC 6902 JSON patch: test, add, remove, replace.
fn json_patch(target: &mut Value, ops: &[Value]) -> Result<(), String> {
    for op in ops {
        let path = op["path"].as_str().ok_or("path")?;
        let (parent, last) = path.rsplit_once('/').ok_or("pointer")?;
        match op["op"].as_str().ok_or("op")? {
            "test" => {
                let actual = target.pointer(path).cloned().unwrap_or(Value::Null);
                if actual != op["value"] {
                    return Err(format!("test failed at {path}"));
                }
            }
            "add" | "replace" => {
                let p = target.pointer_mut(parent).ok_or("parent")?;
                match p {
                    Value::Array(a) if last == "-" => a.push(op["value"].clone()),
                    Value::Array(a) => {
                        a.insert(last.parse().map_err(|_| "index")?, op["value"].clone())
                    }
                    Value::Object(o) => {
                        o.insert(last.to_string(), op["value"].clone());
                    }
                    _ => return Err("parent is not a container".into()),
                }
            }
            "remove" => {
                let p = target.pointer_mut(parent).ok_or("parent")?;
                match p {
                    Value::Array(a) => {
                        a.remove(last.parse().map_err(|_| "index")?);
                    }
                    Value::Object(o) => {
                        o.remove(last);
                    }
                    _ => return Err("parent is not a container".into()),
                }
            }
            other => return Err(format!("unsupported op {other}")),
        }
    }
    Ok(())
}

impl FakeApi {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves this fake over real HTTP on 127.0.0.1 (for the gateway binary) and writes a
    /// kubeconfig pointing at it into `dir`; returns the kubeconfig's path.
    pub async fn serve_http(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let me = me.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let req = Request::from_parts(parts, Body::from(bytes.to_vec()));
                let reply = me.handle(req).await;
                let content_type = reply.content_type();
                let (code, body) = match reply {
                    Reply::Json(code, v) => (
                        code,
                        axum::body::Body::from(serde_json::to_vec(&v).unwrap()),
                    ),
                    Reply::Text(code, t) => (code, axum::body::Body::from(t)),
                    Reply::Watch(rx) => {
                        let events = futures::stream::unfold(rx, |mut rx| async move {
                            rx.recv()
                                .await
                                .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
                        });
                        (StatusCode::OK, axum::body::Body::from_stream(events))
                    }
                };
                Response::builder()
                    .status(code)
                    .header("content-type", content_type)
                    .body(body)
                    .unwrap()
            }
        });
        let conns = Arc::new(Mutex::new(Conns::default()));
        let server = serve_tracked(listener, app.clone(), conns.clone());
        *self.http.lock().unwrap() = Some(Http {
            addr,
            app,
            server: Some(server),
            conns,
        });
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"http://{addr}\"}}}}]\n\
                 users: [{{name: fake, user: {{}}}}]\n\
                 contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: default}}}}]\n\
                 current-context: fake\n"
            ),
        )
        .unwrap();
        path
    }

    /// Takes the HTTP side down as a crashed or restarting API server is: the port stops
    /// listening (connections are refused), and every open connection is cut — watches end
    /// mid-stream, idle keep-alive connections close, a request being answered loses its answer
    /// (though what it wrote stays written, as a write etcd committed does). The objects are
    /// kept, as etcd keeps them. [`FakeApi::come_back`] listens again on the same port.
    pub async fn go_down(&self) {
        let (server, conns) = {
            let mut http = self.http.lock().unwrap();
            let h = http.as_mut().expect("go_down needs serve_http first");
            (h.server.take(), h.conns.clone())
        };
        if let Some(server) = server {
            server.abort();
            // Once the task is gone its listener is closed: connecting is refused from here on.
            let _ = server.await;
        }
        conns.lock().unwrap().cut();
        // Their connections are cut; dropping the senders also ends the streams' tasks.
        self.state.lock().unwrap().watchers.clear();
    }

    /// Where [`FakeApi::serve_http`] serves, down or not.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.lock().unwrap().as_ref().map(|h| h.addr)
    }

    /// Listens again on the port [`FakeApi::go_down`] closed, so the kubeconfig stays valid.
    pub async fn come_back(&self) {
        let (addr, app, conns) = {
            let http = self.http.lock().unwrap();
            let h = http.as_ref().expect("come_back needs serve_http first");
            assert!(h.server.is_none(), "the fake API server is not down");
            (h.addr, h.app.clone(), h.conns.clone())
        };
        // SO_REUSEADDR (which tokio sets) lets the port be bound again at once, despite the
        // cut connections in TIME_WAIT.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("binding {addr} again: {e}"));
        let server = serve_tracked(listener, app, conns);
        self.http.lock().unwrap().as_mut().unwrap().server = Some(server);
    }

    /// A kube client whose every request this fake answers.
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<ReplyBody>>();
        let me = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let reply = me.handle(req).await;
                let content_type = reply.content_type();
                let (code, body) = match reply {
                    Reply::Json(code, v) => (
                        code,
                        Full::new(Bytes::from(serde_json::to_vec(&v).unwrap())).boxed_unsync(),
                    ),
                    Reply::Text(code, t) => (code, Full::new(Bytes::from(t)).boxed_unsync()),
                    Reply::Watch(rx) => {
                        let events = futures::stream::unfold(rx, |mut rx| async move {
                            rx.recv()
                                .await
                                .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
                        });
                        (StatusCode::OK, StreamBody::new(events).boxed_unsync())
                    }
                };
                let resp = Response::builder()
                    .status(code)
                    .header("content-type", content_type)
                    .body(body)
                    .unwrap();
                send.send_response(resp);
            }
        });
        kube::Client::new(service, "default")
    }

    /// A collection's objects matching the request's label and field selectors, a page of
    /// `limit` after the `continue` token, as the API server pages them: the token when more
    /// match, and their count when the list is not filtered (the API server cannot count
    /// filtered ones without reading them all).
    fn list(s: &State, coll: &str, query: &str, metadata_only: bool) -> Result<Value, String> {
        let labels = query_param(query, "labelSelector").unwrap_or_default();
        let fields = query_param(query, "fieldSelector").unwrap_or_default();
        let after = query_param(query, "continue").filter(|c| !c.is_empty());
        let limit = query_param(query, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        // A namespaced collection's objects sit together under its path.
        let start = if coll.contains("/namespaces/") {
            format!("{coll}/")
        } else {
            String::new()
        };
        let mut matching = Vec::new();
        for (k, o) in s.objects.range(start.clone()..) {
            if !k.starts_with(&start) {
                break;
            }
            if after.as_ref().is_some_and(|a| k <= a) || !in_collection(k, coll) {
                continue;
            }
            if labels_match(o, &labels)? && fields_match(o, &fields)? {
                matching.push((k, o));
            }
        }
        let shown = limit.unwrap_or(matching.len()).min(matching.len());
        let rest = matching.len() - shown;
        let items: Vec<Value> = matching[..shown]
            .iter()
            .map(|(_, o)| {
                if metadata_only {
                    metadata_of(o)
                } else {
                    (*o).clone()
                }
            })
            .collect();
        let mut meta = json!({"resourceVersion": s.resource_version.to_string()});
        if rest > 0 {
            meta["continue"] = json!(matching[shown - 1].0);
            if labels.is_empty() && fields.is_empty() {
                meta["remainingItemCount"] = json!(rest);
            }
        }
        Ok(json!({"apiVersion": "v1", "kind": "List", "metadata": meta, "items": items}))
    }

    /// `GET …/pods/{name}/log`: the stored log as text, refused as the API server refuses it
    /// (no such pod, container to choose, container not started, no previous run).
    fn log(s: &State, coll: &str, name: &str, query: &str) -> Reply {
        let key = format!("{coll}/{name}");
        let refuse = |m: String| Reply::from(status(StatusCode::BAD_REQUEST, "BadRequest", &m));
        let Some(pod) = s.objects.get(&key).filter(|_| coll.ends_with("/pods")) else {
            return Reply::from(status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("pods \"{name}\" not found"),
            ));
        };
        let names = |field: &str| -> Vec<String> {
            pod["spec"][field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        };
        let containers = names("containers");
        let container = match query_param(query, "container") {
            Some(c) => c,
            None if containers.len() == 1 => containers[0].clone(),
            None => {
                return refuse(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ));
            }
        };
        if !containers.contains(&container) && !names("initContainers").contains(&container) {
            return refuse(format!("container {container} is not valid for pod {name}"));
        }
        let previous = query_param(query, "previous").as_deref() == Some("true");
        let statuses = ["containerStatuses", "initContainerStatuses"];
        let st = statuses
            .iter()
            .flat_map(|f| pod["status"][f].as_array().into_iter().flatten())
            .find(|c| c["name"] == container.as_str());
        let last_run = st.is_some_and(|c| c["lastState"]["terminated"].is_object());
        if previous && !last_run {
            return refuse(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            ));
        }
        if let Some(reason) = st.and_then(|c| c["state"]["waiting"]["reason"].as_str())
            && !previous
            && !last_run
        {
            return refuse(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            ));
        }
        let text = s
            .logs
            .get(&(key, container, previous))
            .cloned()
            .unwrap_or_default();
        let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
        if let Some(n) = query_param(query, "tailLines").and_then(|n| n.parse::<usize>().ok()) {
            lines.drain(..lines.len().saturating_sub(n));
        }
        let mut out = lines.concat().into_bytes();
        if let Some(n) = query_param(query, "limitBytes").and_then(|n| n.parse::<usize>().ok()) {
            out.truncate(n);
        }
        Reply::Text(StatusCode::OK, String::from_utf8_lossy(&out).into_owned())
    }

    /// Stores what a container of pod `ns/pod` logged (in its `previous` run, or the current).
    pub fn set_log(&self, ns: &str, pod: &str, container: &str, previous: bool, text: &str) {
        let key = format!("/api/v1/namespaces/{ns}/pods/{pod}");
        self.state
            .lock()
            .unwrap()
            .logs
            .insert((key, container.into(), previous), text.into());
    }

    fn next_rv(state: &mut State) -> String {
        state.resource_version += 1;
        state.resource_version.to_string()
    }

    /// Stores an object as if it had been created.
    pub fn insert<T: Serialize>(&self, obj: &T) {
        let mut v = serde_json::to_value(obj).unwrap();
        let mut s = self.state.lock().unwrap();
        let key = path_of(&v);
        let existing = s.objects.get(&key).cloned();
        Self::admit(&mut s, &mut v, existing.as_ref());
        s.put(&key, Some(v));
    }

    /// What the API server adds to a created or updated object.
    fn admit(state: &mut State, obj: &mut Value, existing: Option<&Value>) {
        let rv = Self::next_rv(state);
        let meta = obj["metadata"].as_object_mut().expect("metadata");
        let ex = existing.map(|e| &e["metadata"]);
        meta.insert("resourceVersion".into(), json!(rv));
        let uid = ex
            .and_then(|e| e["uid"].as_str())
            .map(String::from)
            .unwrap_or_else(|| format!("uid-{rv}"));
        meta.insert("uid".into(), json!(uid));
        // Set at creation, to the second, and kept, as the API server does.
        let created = ex
            .and_then(|e| e.get("creationTimestamp").cloned())
            .unwrap_or_else(|| json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()));
        meta.entry("creationTimestamp").or_insert(created);
        let generation = ex.and_then(|e| e["generation"].as_i64()).unwrap_or(0);
        let spec_changed = existing.is_none_or(|e| e.get("spec") != obj.get("spec"));
        obj["metadata"]["generation"] = json!(if spec_changed {
            generation + 1
        } else {
            generation
        });
        if let Some(e) = existing {
            for key in ["finalizers", "deletionTimestamp"] {
                if obj["metadata"].get(key).is_none() && !e["metadata"][key].is_null() {
                    obj["metadata"][key] = e["metadata"][key].clone();
                }
            }
            if obj.get("status").is_none() && e.get("status").is_some() {
                obj["status"] = e["status"].clone();
            }
        }
        if state.controllers && obj["kind"] == "Deployment" {
            let generation = obj["metadata"]["generation"].clone();
            obj["status"] = json!({"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1});
        }
        if state.controllers && obj["kind"] == "Ingress" {
            obj["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}});
        }
        // Like the API server, fold stringData into data.
        if obj["kind"] == "Secret"
            && let Some(sd) = obj.as_object_mut().unwrap().remove("stringData")
        {
            let engine = base64::engine::general_purpose::STANDARD;
            for (k, v) in sd.as_object().unwrap() {
                obj["data"][k] = json!(engine.encode(v.as_str().unwrap()));
            }
        }
    }

    /// Makes every write take `latency` before it is answered.
    pub fn set_write_latency(&self, latency: std::time::Duration) {
        self.state.lock().unwrap().write_latency = latency;
    }

    /// The mean delay added to each write so far (zero before any).
    pub fn mean_write_latency(&self) -> std::time::Duration {
        let (total, n) = self.state.lock().unwrap().latency_added;
        total.checked_div(n).unwrap_or_default()
    }

    /// Makes Deployments report their pod available and Ingresses their address as soon as
    /// they are written, as if their controllers were instant.
    pub fn set_controllers(&self, on: bool) {
        self.state.lock().unwrap().controllers = on;
    }

    async fn handle(&self, req: Request<Body>) -> Reply {
        let method = req.method().to_string();
        if method != "GET" {
            let latency = self.state.lock().unwrap().write_latency;
            if !latency.is_zero() {
                // Tokio's timer wheel rounds every sleep up to the next millisecond tick, which
                // adds about a fifth to a 5 ms latency; a thread sleep is within ~0.2 ms.
                let start = std::time::Instant::now();
                tokio::task::spawn_blocking(move || std::thread::sleep(latency))
                    .await
                    .unwrap();
                let mut s = self.state.lock().unwrap();
                s.latency_added.0 += start.elapsed();
                s.latency_added.1 += 1;
            }
        }
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let content_type = req
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let metadata_only = req
            .headers()
            .get("accept")
            .is_some_and(|v| wants_metadata(v.to_str().unwrap_or_default()));
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Option<Value> =
            (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).expect("JSON body"));
        let mut s = self.state.lock().unwrap();
        s.log.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: body.clone(),
        });
        if let Some((.., code, message)) = s
            .rejections
            .iter()
            .find(|(m, p, ..)| *m == method && *p == path)
        {
            let reason = reason_of(*code);
            let code = StatusCode::from_u16(*code).unwrap();
            return Reply::from(status(code, reason, message));
        }
        if path.starts_with(METRICS) && !s.objects.keys().any(|k| k.starts_with(METRICS)) {
            return Reply::from(status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        let (coll, name, sub) = split(&path);
        if method == "GET"
            && sub.as_deref() == Some("log")
            && let Some(name) = &name
        {
            return Self::log(&s, &coll, name, &query);
        }
        let key = name.as_ref().map(|n| format!("{coll}/{n}"));
        if method == "GET"
            && key.is_none()
            && query_param(&query, "watch").as_deref() == Some("true")
        {
            let (tx, rx) = mpsc::unbounded_channel();
            let selector = query_param(&query, "labelSelector").unwrap_or_default();
            if let Err(e) = labels_match(&json!({}), &selector) {
                return Reply::from(status(StatusCode::BAD_REQUEST, "BadRequest", &e));
            }
            // "0" (or none) asks for any version, which the fake serves as from now on.
            let since = query_param(&query, "resourceVersion")
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0);
            let watcher = Watcher {
                collection: coll,
                selector,
                metadata_only,
                tx,
            };
            s.watch(watcher, since);
            return Reply::Watch(rx);
        }
        let (code, body) = match (method.as_str(), key) {
            ("GET", Some(key)) => match s.objects.get(&key) {
                Some(o) if metadata_only => (StatusCode::OK, metadata_of(o)),
                Some(o) => (StatusCode::OK, o.clone()),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{key} not found"),
                ),
            },
            ("GET", None) => match Self::list(&s, &coll, &query, metadata_only) {
                Ok(list) => (StatusCode::OK, list),
                Err(e) => status(StatusCode::BAD_REQUEST, "BadRequest", &e),
            },
            ("POST", None) => {
                let mut obj = body.expect("POST body");
                let name = obj["metadata"]["name"].as_str().expect("name").to_string();
                let key = format!("{coll}/{name}");
                if s.objects.contains_key(&key) {
                    return Reply::from(status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        &format!("{key} already exists"),
                    ));
                }
                Self::admit(&mut s, &mut obj, None);
                s.put(&key, Some(obj.clone()));
                (StatusCode::CREATED, obj)
            }
            ("PATCH", Some(key)) => {
                let patch = body.expect("PATCH body");
                let existing = s.objects.get(&key).cloned();
                let mut obj = if content_type.starts_with("application/apply-patch") {
                    if sub.as_deref() == Some("status") {
                        let mut o = existing
                            .clone()
                            .ok_or(())
                            .map_err(|_| ())
                            .unwrap_or(Value::Null);
                        o["status"] = patch["status"].clone();
                        o
                    } else {
                        let mut o = patch;
                        if let Some(e) = &existing {
                            // SSA keeps fields other managers own; status is one of them.
                            if o.get("status").is_none() && e.get("status").is_some() {
                                o["status"] = e["status"].clone();
                            }
                        }
                        o
                    }
                } else {
                    let Some(mut o) = existing.clone() else {
                        return Reply::from(status(
                            StatusCode::NOT_FOUND,
                            "NotFound",
                            &format!("{key} not found"),
                        ));
                    };
                    // A patch that names a resourceVersion applies only to that version.
                    if let Some(rv) = patch
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        && o["metadata"]["resourceVersion"].as_str() != Some(rv)
                    {
                        return Reply::from(status(
                            StatusCode::CONFLICT,
                            "Conflict",
                            &format!(
                                "Operation cannot be fulfilled on {key}: the object has been modified; please apply your changes to the latest version and try again"
                            ),
                        ));
                    }
                    if content_type.starts_with("application/merge-patch") {
                        if sub.as_deref() == Some("status") {
                            merge(&mut o, &json!({"status": patch["status"].clone()}));
                        } else {
                            merge(&mut o, &patch);
                        }
                    } else if let Err(e) =
                        json_patch(&mut o, patch.as_array().expect("JSON patch array"))
                    {
                        return Reply::from(status(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "Invalid",
                            &e,
                        ));
                    }
                    o
                };
                Self::admit(&mut s, &mut obj, existing.as_ref());
                // Finalizers gone from an object being deleted: it goes away.
                if obj["metadata"]["deletionTimestamp"].is_string()
                    && obj["metadata"]["finalizers"]
                        .as_array()
                        .is_none_or(|f| f.is_empty())
                {
                    s.put(&key, None);
                } else {
                    s.put(&key, Some(obj.clone()));
                }
                (StatusCode::OK, obj)
            }
            ("DELETE", Some(key)) => match s.delete(&key) {
                Some(Some(o)) => (StatusCode::OK, o),
                Some(None) => (
                    StatusCode::OK,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}),
                ),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{key} not found"),
                ),
            },
            (m, k) => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("{m} {k:?} not supported by the fake"),
            ),
        };
        Reply::Json(code, body)
    }

    /// Every request since the last call, emptying the log.
    pub fn take_log(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// A stored object, typed.
    pub fn typed<T: serde::de::DeserializeOwned>(&self, path: &str) -> Option<T> {
        self.get(path).map(|v| serde_json::from_value(v).unwrap())
    }

    /// Paths of stored objects under a prefix.
    pub fn paths(&self, prefix: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Replaces a stored object's field (as another actor would, e.g. the Deployment controller).
    pub fn set(&self, path: &str, pointer_parent: &str, key: &str, value: Value) {
        let mut s = self.state.lock().unwrap();
        let mut o = s
            .objects
            .get(path)
            .cloned()
            .unwrap_or_else(|| panic!("{path} not stored"));
        if o.pointer(pointer_parent).is_none() {
            merge(&mut o, &pointer_to_object(pointer_parent));
        }
        o.pointer_mut(pointer_parent).unwrap()[key] = value;
        o["metadata"]["resourceVersion"] = json!(Self::next_rv(&mut s));
        // As the API server does, a spec change bumps the generation.
        if s.objects.get(path).and_then(|e| e.get("spec")) != o.get("spec") {
            let generation = o["metadata"]["generation"].as_i64().unwrap_or(0);
            o["metadata"]["generation"] = json!(generation + 1);
        }
        s.put(path, Some(o));
    }

    /// `DELETE` as a client sends it: with finalizers the object only gets its
    /// deletionTimestamp. Whether there was such an object.
    pub fn delete(&self, path: &str) -> bool {
        self.state.lock().unwrap().delete(path).is_some()
    }

    /// Watches open now.
    pub fn watches(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.watchers.retain(|w| !w.tx.is_closed());
        s.watchers.len()
    }

    pub fn remove(&self, path: &str) {
        self.state.lock().unwrap().put(path, None);
    }

    /// Removes an object without telling the watchers, as if it went while they were away.
    pub fn remove_unseen(&self, path: &str) {
        self.state.lock().unwrap().objects.remove(path);
    }

    /// Ends every watch with 410 Gone ("too old resource version"), as an API server does after
    /// compaction: watchers must list again, since a watch from any version seen so far gets
    /// 410 too.
    pub fn expire_watches(&self) {
        let mut s = self.state.lock().unwrap();
        for w in s.watchers.drain(..) {
            let _ = w.tx.send(gone());
        }
        s.history.clear();
        s.compacted = s.resource_version;
    }

    /// One pass of the garbage collector, run until nothing more goes: deletes every object
    /// that has owner references and whose owners are all gone (a background deletion of the
    /// owner, `kubectl delete`'s default). Objects with an owner reference that cannot resolve
    /// (a cluster-scoped object naming a namespaced owner) are never collected, as on a real
    /// cluster. Returns the paths deleted.
    pub fn collect_garbage(&self) -> Vec<String> {
        let mut s = self.state.lock().unwrap();
        let mut collected = Vec::new();
        loop {
            let orphans: Vec<String> = s
                .objects
                .iter()
                .filter(|(k, o)| {
                    let owners = o["metadata"]["ownerReferences"].as_array();
                    owners.is_some_and(|refs| {
                        !refs.is_empty() && refs.iter().all(|r| s.owner_exists(k, r) == Some(false))
                    }) && o["metadata"]["deletionTimestamp"].is_null()
                })
                .map(|(k, _)| k.clone())
                .collect();
            if orphans.is_empty() {
                return collected;
            }
            for key in orphans {
                s.delete(&key);
                collected.push(key);
            }
        }
    }

    /// Answers every `method` request on `path` with `code` and `message` from now on.
    pub fn reject(&self, method: &str, path: &str, code: u16, message: &str) {
        self.state.lock().unwrap().rejections.push((
            method.into(),
            path.into(),
            code,
            message.into(),
        ));
    }

    pub fn clear_rejections(&self) {
        self.state.lock().unwrap().rejections.clear();
    }
}

fn pointer_to_object(pointer: &str) -> Value {
    pointer
        .trim_matches('/')
        .split('/')
        .rev()
        .fold(json!({}), |acc, seg| json!({ seg: acc }))
}
