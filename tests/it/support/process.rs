//! Running `clawops` as a process in tests: free ports, a plain HTTP client, cleanup on panic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

/// Kills the child if the test fails before it stops.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaper {
    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "process did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for the process to exit by itself (a gateway stopping to apply a
    /// restore); its exit status.
    pub fn exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "the process did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stderr(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            e.read_to_string(&mut out).unwrap();
        }
        out
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A response: status, raw header block, body.
pub struct Reply {
    pub code: u16,
    pub headers: String,
    pub body: String,
}

/// A plain HTTP/1.1 request with extra header lines.
pub fn request(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> Option<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Reply {
        code,
        headers: head.to_string(),
        body: body.to_string(),
    })
}

/// One turn through `POST /api/chat` with the gateway token.
pub fn api_chat(port: u16, token: &str, chat: &str, text: &str) -> Reply {
    let body = serde_json::json!({"chat": chat, "text": text}).to_string();
    request(
        port,
        "POST",
        "/api/chat",
        &[
            &format!("Authorization: Bearer {token}"),
            "Content-Type: application/json",
        ],
        &body,
    )
    .expect("the gateway answers")
}

pub fn get(port: u16, path: &str) -> Option<Reply> {
    request(port, "GET", path, &[], "")
}

/// Polls `path` until it answers at all.
pub fn wait_for_http(port: u16, path: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = get(port, path) {
            return r;
        }
        assert!(Instant::now() < deadline, "nothing answered on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
