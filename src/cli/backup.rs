//! `clawops backup create|restore`: a gateway's state as a `.tar.zst` with a manifest, taken
//! from a running gateway through its API or from a state dir, and restored into a state dir
//! while no gateway runs on it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::GatewayAccess;
use crate::backup;

#[derive(Subcommand)]
pub enum BackupAction {
    /// Back up the state (approved senders, history, cron runs, node pairings, audit logs).
    Create {
        /// The archive to write: a `.tar.zst` file, a directory (ending in `/`), or
        /// `s3://BUCKET/KEY` (a KEY ending in `/` is a prefix). In a directory or under a prefix
        /// the backup is named by the time. S3 credentials and endpoint come from
        /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL.
        #[arg(long)]
        to: String,
        /// Read this state dir instead of asking the running gateway.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Include the secrets (the standalone gateway token, the nodes' device tokens).
        #[arg(long)]
        include_secrets: bool,
        /// When `--to` is a directory (ending in `/`) or an S3 prefix: keep only the newest N
        /// backups there (older `clawops-*.tar.zst` are deleted).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        keep: Option<u32>,
        /// How long to keep asking while the gateway is not reachable or not ready (seconds);
        /// the backup CronJob of `spec.backup` waits 300.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Where to write a failure's reason for `kubectl describe pod` (in a pod:
        /// /dev/termination-log).
        #[arg(long, hide = true, env = "CLAWOPS_TERMINATION_LOG")]
        termination_log: Option<PathBuf>,
    },
    /// Restore an archive: into a running gateway through its API (it stops and applies the
    /// backup at its next start; in Kubernetes it is started again by itself), or with `--into`
    /// into a state dir no gateway runs on.
    Restore {
        /// A `.tar.zst` file or `s3://BUCKET/KEY`; a directory or prefix (ending in `/`) means
        /// the newest backup there.
        archive: String,
        /// The state dir to restore into, instead of the running gateway.
        #[arg(long)]
        into: Option<PathBuf>,
        /// Replace state that is there (it is kept beside it as `<dir>.replaced-<time>`).
        #[arg(long)]
        force: bool,
    },
}

/// Where an archive goes or comes from.
enum Place {
    File(PathBuf),
    S3(backup::s3::Location),
}

fn place(at: &str) -> anyhow::Result<Place> {
    if at.starts_with("s3://") {
        return Ok(Place::S3(backup::s3::Location::parse(at)?));
    }
    if at.contains("://") {
        bail!("{at}: a backup goes to a local file or to s3://BUCKET/KEY");
    }
    Ok(Place::File(PathBuf::from(at)))
}

/// The names of what is in a directory or under an S3 prefix (its key).
async fn names_at(place: &Place) -> anyhow::Result<Vec<String>> {
    Ok(match place {
        Place::File(dir) => std::fs::read_dir(dir)
            .with_context(|| dir.display().to_string())?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Place::S3(at) => s3()?
            .list(&at.bucket, &at.key)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(at.key.as_str()).map(String::from))
            .collect(),
    })
}

fn s3() -> anyhow::Result<backup::s3::S3> {
    Ok(backup::s3::S3::from_env(|k| std::env::var(k).ok())?)
}

/// Writes `bytes` to `path` (0600) by way of a temporary file: a half-written backup never
/// carries the name.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| tmp.display().to_string())?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())
}

pub async fn run(action: BackupAction, access: GatewayAccess) -> anyhow::Result<()> {
    match action {
        BackupAction::Create {
            to,
            from,
            include_secrets,
            keep,
            wait,
            termination_log,
        } => {
            let termination_log = crate::cli::client::termination_log(termination_log);
            let created = create(&to, from, include_secrets, keep, wait, access).await;
            // In the backup CronJob's pod, `kubectl describe` shows why it failed.
            if let (Err(e), Some(path)) = (&created, termination_log) {
                crate::gateway::cron::outcome::write_termination_message(&path, &format!("{e:#}"));
            }
            created?
        }
        BackupAction::Restore {
            archive,
            into,
            force,
        } => {
            let mut place = place(&archive)?;
            // A directory or a prefix: its newest backup.
            if archive.ends_with('/') {
                let names = names_at(&place).await?;
                let Some(newest) = backup::newest(&names) else {
                    bail!("{archive}: no backup (clawops-*.tar.zst) there");
                };
                println!("the newest backup there: {newest}");
                match &mut place {
                    Place::File(path) => *path = path.join(&newest),
                    Place::S3(at) => at.key = format!("{}{newest}", at.key),
                }
            }
            let bytes = match place {
                Place::File(path) => {
                    std::fs::read(&path).with_context(|| path.display().to_string())?
                }
                Place::S3(at) => s3()?.get(&at).await?,
            };
            let Some(into) = into else {
                let api = access.client()?;
                let body = api
                    .post_bytes(&format!("/api/restore?force={force}"), bytes)
                    .await?;
                let staged: crate::api::RestoreStaged = serde_json::from_value(body)?;
                println!(
                    "the gateway took {} files (a backup by clawops {} of {}); it stops now and applies them when it starts again (in Kubernetes it is restarted by itself; standalone, start it again)",
                    staged.files,
                    staged.clawops,
                    staged.created.format("%Y-%m-%d %H:%M UTC")
                );
                return Ok(());
            };
            if crate::cli::client::answers(&access.url).await {
                bail!(
                    "a gateway answers at {}: stop it before restoring into its state dir (it keeps its state in memory and would write over the restore), or restore through it (drop --into)",
                    access.url
                );
            }
            let name = archive.clone();
            let dir = into.clone();
            let (manifest, kept) =
                tokio::task::spawn_blocking(move || backup::restore(&bytes, &name, &dir, force))
                    .await??;
            println!(
                "restored {} files into {} (a backup by clawops {} of {})",
                manifest.files.len(),
                into.display(),
                manifest.clawops,
                manifest.created.format("%Y-%m-%d %H:%M UTC")
            );
            if let Some(k) = kept {
                println!("the state that was there is kept in {}", k.display());
            }
            if !manifest.secrets {
                println!(
                    "no secrets were in it: a standalone gateway makes a new token file (`clawops` reads it), and each node gets a new device token when it reconnects"
                );
            }
        }
    }
    Ok(())
}

/// Takes a backup from the gateway (or `from`, a state dir) and writes it to `to`.
async fn create(
    to: &str,
    from: Option<PathBuf>,
    include_secrets: bool,
    keep: Option<u32>,
    wait: u64,
    access: GatewayAccess,
) -> anyhow::Result<()> {
    if keep.is_some() && !to.ends_with('/') {
        bail!("--keep needs --to to be a directory or an S3 prefix (ending in /): {to}");
    }
    let place = place(to)?;
    let (bytes, files) = match from {
        Some(dir) => {
            let made = tokio::task::spawn_blocking(move || backup::create(&dir, include_secrets))
                .await??;
            let n = made.manifest.files.len();
            (made.archive, n)
        }
        None => {
            let api = access.client()?;
            let path = format!("/api/backup?secrets={include_secrets}");
            let wait = std::time::Duration::from_secs(wait);
            let bytes = crate::cli::client::while_starting(wait, || api.get_bytes(&path)).await?;
            let (manifest, _) = backup::read(&bytes, "the gateway's answer")?;
            (bytes, manifest.files.len())
        }
    };
    let name = backup::timed_name(chrono::Utc::now());
    let size = bytes.len();
    let mut pruned = Vec::new();
    let written = match place {
        Place::File(path) => {
            let is_dir = to.ends_with('/');
            let path = if is_dir {
                std::fs::create_dir_all(&path).with_context(|| path.display().to_string())?;
                path.join(&name)
            } else {
                path
            };
            write_private(&path, &bytes)?;
            if let (Some(n), true) = (keep, is_dir) {
                let dir = path.parent().expect("a file in the directory");
                let names = names_at(&Place::File(dir.to_path_buf())).await?;
                for old in backup::beyond(&names, n as usize) {
                    std::fs::remove_file(dir.join(&old))
                        .with_context(|| dir.join(&old).display().to_string())?;
                    pruned.push(old);
                }
            }
            path.display().to_string()
        }
        Place::S3(mut at) => {
            let client = s3()?;
            let prefix = (at.key.is_empty() || at.key.ends_with('/')).then(|| at.key.clone());
            if let Some(p) = &prefix {
                at.key = format!("{p}{name}");
            }
            // Moved, not copied: the archive is held once (the backup Job has 256 MiB).
            client.put(&at, bytes).await?;
            if let (Some(n), Some(p)) = (keep, &prefix) {
                let under = backup::s3::Location {
                    bucket: at.bucket.clone(),
                    key: p.clone(),
                };
                let names = names_at(&Place::S3(under)).await?;
                for old in backup::beyond(&names, n as usize) {
                    let gone = backup::s3::Location {
                        bucket: at.bucket.clone(),
                        key: format!("{p}{old}"),
                    };
                    client.delete(&gone).await?;
                    pruned.push(old);
                }
            }
            format!("s3://{}/{}", at.bucket, at.key)
        }
    };

    println!(
        "wrote {written} ({files} files, {size} bytes{})",
        if include_secrets {
            ", secrets included: keep it safe"
        } else {
            ", no secrets"
        }
    );
    if !pruned.is_empty() {
        println!(
            "deleted {} older backup(s): {}",
            pruned.len(),
            pruned.join(", ")
        );
    }
    Ok(())
}
