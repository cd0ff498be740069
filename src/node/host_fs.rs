//! The machine as the allowlist check sees it: programs found in PATH (or by path) that are
//! executable files, judged by their real path with symlinks resolved.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::exec::Host;

pub struct MachineHost {
    pub path_env: String,
    pub home: Option<PathBuf>,
}

impl MachineHost {
    pub fn from_env() -> Self {
        Self {
            path_env: std::env::var("PATH")
                .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Host for MachineHost {
    fn resolve(&self, program: &str, cwd: Option<&Path>) -> Option<PathBuf> {
        let found = if program.contains('/') {
            let p = Path::new(program);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.map(Path::to_path_buf)
                    .or_else(|| std::env::current_dir().ok())?
                    .join(p)
            };
            executable(&p).then_some(p)
        } else {
            self.path_env
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| Path::new(d).join(program))
                .find(|p| executable(p))
        }?;
        std::fs::canonicalize(found).ok()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_through_path_and_symlinks_to_their_real_file() {
        let dir = std::env::temp_dir().join(format!("clawops-host-{}", rand::random::<u32>()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let real = dir.join("bin/real-tool");
        std::fs::write(&real, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&real, dir.join("bin/alias")).unwrap();
        std::fs::write(dir.join("bin/not-exec"), "x").unwrap();
        let host = MachineHost {
            path_env: format!("/nonexistent:{}", dir.join("bin").display()),
            home: None,
        };
        let real = std::fs::canonicalize(&real).unwrap();
        assert_eq!(host.resolve("real-tool", None), Some(real.clone()));
        assert_eq!(host.resolve("alias", None), Some(real.clone()));
        assert_eq!(host.resolve("./bin/alias", Some(&dir)), Some(real));
        assert_eq!(host.resolve("not-exec", None), None);
        assert_eq!(host.resolve("nope", None), None);
    }
}
