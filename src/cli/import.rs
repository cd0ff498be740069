//! `clawops import --from ~/.clawdbot`: reads a Clawdbot install and writes `<name>.yaml` (the
//! CRs), `<name>-state.json` (approved senders and pending codes, for `clawops state load`) and,
//! only when asked, the Secret with the values found. Everything is written or nothing is; the
//! report at the end lists what was not carried over and what to do.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::import::{self, source};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The Clawdbot state dir (`~/.clawdbot`): clawdbot.json, credentials/, cron/, devices/.
    #[arg(long)]
    pub from: PathBuf,
    /// The config file, when it is not `<from>/clawdbot.json` (CLAWDBOT_CONFIG_PATH).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The workspace with IDENTITY.md (default: agents.defaults.workspace, else ~/clawd).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// The `.env` file the gateway ran with (TELEGRAM_BOT_TOKEN, ZAI_API_KEY,
    /// CLAWDBOT_GATEWAY_TOKEN, and what `${VAR}` in the config names).
    #[arg(long)]
    pub env: Option<PathBuf>,
    /// The Agent's name (and the prefix of what it owns).
    #[arg(long, default_value = "assistant")]
    pub name: String,
    /// Where to write `<name>.yaml` and `<name>-state.json`.
    #[arg(short = 'o', long = "out", default_value = ".")]
    pub out: PathBuf,
    /// Also write the Secret with the values found (bot token, model key, gateway token) to
    /// this file (mode 0600). Never into the CR YAML or stdout.
    #[arg(long)]
    pub secrets_out: Option<PathBuf>,
    /// Fail, writing nothing, if anything is not carried over or a secret is a placeholder.
    #[arg(long)]
    pub strict: bool,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Writes every file, or none: each goes to a temporary name first.
fn write_all(files: &[(PathBuf, String, bool)]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut written = Vec::new();
    let result = (|| {
        for (path, text, private) in files {
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(if *private { 0o600 } else { 0o644 })
                .open(&tmp)?;
            written.push(tmp.clone());
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        for (path, _, _) in files {
            std::fs::rename(
                path.with_extension(format!("tmp.{}", std::process::id())),
                path,
            )?;
        }
        Ok(())
    })();
    if result.is_err() {
        for t in written {
            let _ = std::fs::remove_file(t);
        }
    }
    result
}

pub fn run(args: ImportArgs) -> ExitCode {
    let paths = source::Paths {
        from: args.from.clone(),
        config: args.config.clone(),
        workspace: args.workspace.clone(),
        env: args.env.clone(),
        home: home(),
    };
    let imported = match source::read(&paths)
        .map_err(import::ImportError::from)
        .and_then(|install| import::plan(&install, &args.name))
    {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = imported.report.to_string();
    if args.strict && imported.report.blocking() > 0 {
        eprint!("{report}");
        eprintln!(
            "error: --strict: {} item(s) above are not carried over or are placeholders; nothing was written",
            imported.report.blocking()
        );
        return ExitCode::from(3);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    let crs = args.out.join(format!("{}.yaml", args.name));
    let state = args.out.join(format!("{}-state.json", args.name));
    let mut files = vec![
        (crs.clone(), imported.yaml.clone(), false),
        (
            state.clone(),
            serde_json::to_string_pretty(&imported.bundle).expect("bundle serializes") + "\n",
            // Pending codes and sender ids: the owner's business.
            true,
        ),
    ];
    if let Some(s) = &args.secrets_out {
        files.push((s.clone(), imported.secret_yaml.clone(), true));
    }
    if let Err(e) = write_all(&files) {
        eprintln!(
            "error: writing {}: {e}; nothing was written",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    println!(
        "wrote {} (Agent {}, {} Channel, {} Cron(s), {} NodePairing(s))",
        crs.display(),
        args.name,
        usize::from(imported.yaml.contains("kind: Channel")),
        imported.crons,
        imported.nodes
    );
    println!(
        "wrote {} ({} approved sender(s)): load it with `clawops state load {}`",
        state.display(),
        imported.approved,
        state.display()
    );
    match &args.secrets_out {
        Some(s) => println!(
            "wrote {} (mode 0600): the Secret with the values found",
            s.display()
        ),
        None => println!(
            "the Secret {}-secrets was not written (pass --secrets-out FILE, or create it yourself with keys telegram-bot-token, zai-api-key)",
            args.name
        ),
    }
    print!("{report}");
    ExitCode::SUCCESS
}
