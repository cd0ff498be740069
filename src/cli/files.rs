//! The subcommands that write files or YAML without a cluster: `crd`, `generate` and `render`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::manifests::Manifests;

/// `clawops crd [--out-dir DIR]`: the CRDs, to stdout or one file each.
pub fn crd(out_dir: Option<PathBuf>) -> ExitCode {
    let crds = crate::crd::all();
    match out_dir {
        None => {
            for c in &crds {
                print!("{}", crate::crd::to_yaml(c));
            }
        }
        Some(dir) => {
            for c in &crds {
                let path = dir.join(crate::crd::file_name(c));
                if let Err(e) = std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::write(&path, crate::crd::to_yaml(c)))
                {
                    eprintln!("error: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// `clawops generate`: every generated file of the repository, under `root`.
pub fn generate(root: &Path) -> ExitCode {
    for (path, content) in crate::generate::files() {
        let path = root.join(path);
        if let Err(e) = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&path, content))
        {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

/// `clawops render`: what the operator would create for the manifests in `files`; exit 2 when
/// they are refused.
pub fn render(
    files: &[String],
    namespace: &str,
    gateway_image: Option<String>,
    check_secrets: bool,
) -> ExitCode {
    let image = gateway_image.unwrap_or_else(crate::default_image);
    let result = Manifests::from_files(files, namespace)
        .map_err(|e| e.to_string())
        .and_then(|m| crate::render::render(&m, &image, check_secrets).map_err(|e| e.to_string()));
    match result {
        Ok(r) => {
            for n in r.notes {
                eprintln!("note: {n}");
            }
            print!("{}", r.yaml);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
