//! The nodes connected now: for each device id its outbound queue, what it declared, and the
//! invokes waiting for its results. An invoke sends `node.invoke.request` and waits for the
//! matching `node.invoke.result`, a timeout, or the node's disconnect.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::frames::Frame;
use crate::protocol::invoke::{EVENT_INVOKE_REQUEST, InvokeRequest, InvokeResult};
use crate::util::uuid::uuid_v4 as uuid;

/// What a connected node told the gateway about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub node_id: String,
    pub display_name: Option<String>,
    pub platform: String,
    pub version: String,
    pub commands: Vec<String>,
    pub remote_ip: String,
    pub connected_at_ms: i64,
}

/// What the gateway sends a connected node.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Boxed: the queue of every idle node holds a block of these.
    Frame(Box<Frame>),
    /// Close the connection with this code and reason (a revoked pairing, a shutdown).
    Close(u16, String),
}

struct Session {
    conn: u64,
    info: NodeInfo,
    out: mpsc::Sender<Outbound>,
}

/// Why an invoke produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("node {0} is not connected")]
    NotConnected(String),
    #[error("node {node} did not declare `{command}`")]
    NotDeclared { node: String, command: String },
    #[error("node {node} did not answer `{command}` within {secs} s")]
    TimedOut {
        node: String,
        command: String,
        secs: u64,
    },
    #[error("node {node} disconnected before answering `{command}`")]
    Disconnected { node: String, command: String },
}

type Waiter = oneshot::Sender<InvokeResult>;

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Session>>,
    /// Invokes waiting, by invoke id: the node they went to and who waits.
    waiting: Mutex<HashMap<String, (String, Waiter)>>,
    next_conn: AtomicU64,
}

impl Registry {
    /// Registers a connected node; a reconnect replaces its older session. Returns the
    /// connection number to give back to [`Registry::disconnected`].
    pub fn connected(&self, info: NodeInfo, out: mpsc::Sender<Outbound>) -> u64 {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(info.node_id.clone(), Session { conn, info, out });
        conn
    }

    /// Forgets the session `conn` of `node_id` (not a newer one that replaced it); invokes
    /// waiting on the node fail as disconnected.
    pub fn disconnected(&self, node_id: &str, conn: u64) {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions.get(node_id).is_some_and(|s| s.conn == conn) {
            sessions.remove(node_id);
            drop(sessions);
            // Dropping the waiters' senders wakes them with an error.
            self.waiting
                .lock()
                .expect("waiting lock")
                .retain(|_, (node, _)| node != node_id);
        }
    }

    /// Closes the node's connection, if it has one.
    pub async fn kick(&self, node_id: &str, code: u16, reason: &str) -> bool {
        let out = self
            .sessions
            .lock()
            .expect("sessions lock")
            .get(node_id)
            .map(|s| s.out.clone());
        match out {
            Some(out) => out.send(Outbound::Close(code, reason.into())).await.is_ok(),
            None => false,
        }
    }

    /// Tells every connected node the gateway stops: a `shutdown` event, then a close.
    pub async fn close_all(&self, code: u16, reason: &str) {
        let outs: Vec<mpsc::Sender<Outbound>> = self
            .sessions
            .lock()
            .expect("sessions lock")
            .values()
            .map(|s| s.out.clone())
            .collect();
        for out in outs {
            let shutdown = Frame::event("shutdown", serde_json::json!({ "reason": reason }));
            let _ = out.send(Outbound::Frame(Box::new(shutdown))).await;
            let _ = out.send(Outbound::Close(code, reason.into())).await;
        }
    }

    pub fn list(&self) -> Vec<NodeInfo> {
        let mut out: Vec<NodeInfo> = self
            .sessions
            .lock()
            .expect("sessions lock")
            .values()
            .map(|s| s.info.clone())
            .collect();
        out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        out
    }

    pub fn get(&self, node_id: &str) -> Option<NodeInfo> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .get(node_id)
            .map(|s| s.info.clone())
    }

    /// Hands a `node.invoke.result` to whoever waits for it. False when nobody does (a late or
    /// unknown result, or one from another node).
    pub fn resolve(&self, from_node: &str, result: InvokeResult) -> bool {
        let mut waiting = self.waiting.lock().expect("waiting lock");
        match waiting.get(&result.id) {
            Some((node, _)) if node == from_node => {
                let (_, tx) = waiting.remove(&result.id).expect("present");
                tx.send(result).is_ok()
            }
            _ => false,
        }
    }

    /// Sends `command` to the node and waits for its result.
    pub async fn invoke(
        &self,
        node_id: &str,
        command: &str,
        params: Option<&Value>,
        timeout: Duration,
        idempotency_key: Option<String>,
    ) -> Result<InvokeResult, InvokeError> {
        let out = {
            let sessions = self.sessions.lock().expect("sessions lock");
            let s = sessions
                .get(node_id)
                .ok_or_else(|| InvokeError::NotConnected(node_id.into()))?;
            if !s.info.commands.iter().any(|c| c == command) {
                return Err(InvokeError::NotDeclared {
                    node: node_id.into(),
                    command: command.into(),
                });
            }
            s.out.clone()
        };
        let id = uuid();
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .expect("waiting lock")
            .insert(id.clone(), (node_id.to_string(), tx));
        let request = InvokeRequest {
            id: id.clone(),
            node_id: node_id.into(),
            command: command.into(),
            params_json: params.map(|p| p.to_string()),
            timeout_ms: None,
            idempotency_key,
        };
        let frame = Frame::event(
            EVENT_INVOKE_REQUEST,
            serde_json::to_value(&request).expect("invoke serializes"),
        );
        let gone = || InvokeError::Disconnected {
            node: node_id.into(),
            command: command.into(),
        };
        if out.send(Outbound::Frame(Box::new(frame))).await.is_err() {
            // Never sent: the node cannot have run it.
            self.waiting.lock().expect("waiting lock").remove(&id);
            return Err(InvokeError::NotConnected(node_id.into()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => Err(gone()),
            Err(_) => {
                self.waiting.lock().expect("waiting lock").remove(&id);
                Err(InvokeError::TimedOut {
                    node: node_id.into(),
                    command: command.into(),
                    secs: timeout.as_secs(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> NodeInfo {
        NodeInfo {
            node_id: id.into(),
            display_name: None,
            platform: "linux".into(),
            version: "test".into(),
            commands: vec!["system.run".into()],
            remote_ip: "127.0.0.1".into(),
            connected_at_ms: 0,
        }
    }

    fn result(id: &str, node: &str) -> InvokeResult {
        InvokeResult {
            id: id.into(),
            node_id: node.into(),
            ok: true,
            payload: None,
            payload_json: Some("{}".into()),
            error: None,
        }
    }

    #[tokio::test]
    async fn an_invoke_gets_its_own_result_and_nobody_elses() {
        let reg = std::sync::Arc::new(Registry::default());
        let (tx, mut rx) = mpsc::channel(8);
        reg.connected(info("n1"), tx);
        let r = reg.clone();
        let call = tokio::spawn(async move {
            r.invoke("n1", "system.run", None, Duration::from_secs(5), None)
                .await
        });
        let Some(Outbound::Frame(f)) = rx.recv().await else {
            panic!("no invoke sent")
        };
        let Frame::Event(e) = *f else {
            panic!("no invoke sent")
        };
        let req: InvokeRequest = serde_json::from_value(e.payload.unwrap()).unwrap();
        assert!(
            !reg.resolve("n2", result(&req.id, "n2")),
            "another node cannot answer"
        );
        assert!(!reg.resolve("n1", result("other-id", "n1")));
        assert!(reg.resolve("n1", result(&req.id, "n1")));
        assert_eq!(call.await.unwrap().unwrap().id, req.id);
        assert!(!reg.resolve("n1", result(&req.id, "n1")), "answered once");
    }

    #[tokio::test]
    async fn undeclared_commands_disconnects_and_timeouts_are_errors() {
        let reg = std::sync::Arc::new(Registry::default());
        assert_eq!(
            reg.invoke("n1", "system.run", None, Duration::from_secs(1), None)
                .await,
            Err(InvokeError::NotConnected("n1".into()))
        );
        let (tx, _rx) = mpsc::channel(8);
        let conn = reg.connected(info("n1"), tx);
        assert!(matches!(
            reg.invoke("n1", "camera.snap", None, Duration::from_secs(1), None)
                .await,
            Err(InvokeError::NotDeclared { .. })
        ));
        assert!(matches!(
            reg.invoke("n1", "system.run", None, Duration::from_millis(20), None)
                .await,
            Err(InvokeError::TimedOut { .. })
        ));
        let r = reg.clone();
        let call = tokio::spawn(async move {
            r.invoke("n1", "system.run", None, Duration::from_secs(5), None)
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A newer session of the same node is not dropped by the old one's close.
        reg.disconnected("n1", conn + 100);
        assert!(reg.get("n1").is_some());
        reg.disconnected("n1", conn);
        assert!(matches!(
            call.await.unwrap(),
            Err(InvokeError::Disconnected { .. })
        ));
        assert!(reg.list().is_empty());
    }
}
