//! moto in server mode: S3-compatible storage for the backup tests, with bucket `claw-backups`
//! and the credentials below (moto takes any; clawops signs with them all the same).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::Reaper;

pub const BUCKET: &str = "claw-backups";
pub const ACCESS_KEY_ID: &str = "AKIDCLAWOPSTEST";
pub const SECRET_ACCESS_KEY: &str = "moto-secret";

fn python() -> String {
    format!("{}/.tools/moto/bin/python", env!("CARGO_MANIFEST_DIR"))
}

/// Runs Python with moto's boto3 against the server at `endpoint`, `s3` being its client.
fn boto3(endpoint: &str, code: &str) -> String {
    let out = Command::new(python())
        .args([
            "-c",
            &format!(
                "import boto3; s3 = boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='{ACCESS_KEY_ID}', aws_secret_access_key='{SECRET_ACCESS_KEY}', region_name='us-east-1'); {code}"
            ),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// moto on `port` (`scripts/install-moto.sh`, which `make test` runs), with the bucket made.
pub fn moto(port: u16) -> Reaper {
    assert!(
        Path::new(&python()).exists(),
        "moto is not installed: run scripts/install-moto.sh (make test does)"
    );
    let child = Command::new(python())
        .args(["-m", "moto.server", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Made with moto's own boto3: clawops only reads, writes, lists and deletes objects.
    boto3(
        &format!("http://127.0.0.1:{port}"),
        &format!("s3.create_bucket(Bucket='{BUCKET}')"),
    );
    Reaper(child)
}

/// The keys under `prefix` in the bucket, as boto3 lists them.
pub fn keys(endpoint: &str, prefix: &str) -> Vec<String> {
    boto3(
        endpoint,
        &format!(
            "r = s3.list_objects_v2(Bucket='{BUCKET}', Prefix='{prefix}'); print('\\n'.join(o['Key'] for o in r.get('Contents', [])))"
        ),
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(String::from)
    .collect()
}
