//! The allowlist check: every simple command of a command line must run a program whose
//! resolved path matches an allowlist pattern, or be a stdin-only "safe bin" used without file
//! arguments. Pure: the machine's file system is asked through [`Host`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::analyze::Words;

/// Programs that only read stdin when given no file: safe to run with options alone.
pub const DEFAULT_SAFE_BINS: &[&str] = &[
    "jq", "grep", "cut", "sort", "uniq", "head", "tail", "tr", "wc",
];

/// [`DEFAULT_SAFE_BINS`] as the list [`check`] takes.
pub fn default_safe_bins() -> Vec<String> {
    DEFAULT_SAFE_BINS.iter().map(|s| s.to_string()).collect()
}

/// One allowlist entry, as Clawdbot's `exec-approvals.json` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resolved_path: Option<String>,
}

impl AllowEntry {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            id: None,
            pattern: pattern.into(),
            last_used_at: None,
            last_used_command: None,
            last_resolved_path: None,
        }
    }
}

/// What the check needs from the machine.
pub trait Host {
    /// The real path (symlinks resolved) of the executable file `program` names: a path, or a
    /// name looked up in PATH. None when there is no such executable.
    fn resolve(&self, program: &str, cwd: Option<&Path>) -> Option<PathBuf>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// The home directory `~` stands for.
    fn home(&self) -> Option<PathBuf>;
}

/// The outcome for a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Every simple command passed.
    pub satisfied: bool,
    /// The resolved program of each simple command (None when it does not resolve).
    pub resolved: Vec<Option<PathBuf>>,
    /// Indexes of the entries that matched, each once.
    pub matched: Vec<usize>,
    /// Why the first failing command failed.
    pub miss: Option<String>,
}

/// Checks `commands` against `allowlist` and `safe_bins`.
pub fn check(
    commands: &[Words],
    allowlist: &[AllowEntry],
    safe_bins: &[String],
    host: &dyn Host,
    cwd: Option<&Path>,
) -> Check {
    let home = host.home();
    let mut out = Check {
        satisfied: true,
        resolved: Vec::new(),
        matched: Vec::new(),
        miss: None,
    };
    for words in commands {
        let program = &words[0];
        let resolved = host.resolve(&expand_home(program, home.as_deref()), cwd);
        let hit = resolved.as_ref().and_then(|path| {
            let path = path.to_string_lossy();
            allowlist
                .iter()
                .position(|e| pattern_matches(&e.pattern, &path, home.as_deref()))
        });
        let ok = match hit {
            Some(i) => {
                if !out.matched.contains(&i) {
                    out.matched.push(i);
                }
                true
            }
            None => resolved
                .as_deref()
                .is_some_and(|path| safe_bin_use(words, path, safe_bins, host, cwd)),
        };
        if !ok && out.miss.is_none() {
            out.satisfied = false;
            out.miss = Some(match &resolved {
                None => format!("`{program}` is not an executable on this machine"),
                Some(path) => format!("{} is not on the allowlist", path.display()),
            });
        }
        out.resolved.push(resolved);
    }
    out
}

/// A stdin-only program run with options only: no argument names a file.
fn safe_bin_use(
    words: &Words,
    path: &Path,
    safe_bins: &[String],
    host: &dyn Host,
    cwd: Option<&Path>,
) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let listed = safe_bins.iter().any(|b| b.to_ascii_lowercase() == name)
        // The program a name resolves to must be the safe bin, not a renamed other program.
        && words[0].rsplit('/').next().is_some_and(|w| w.eq_ignore_ascii_case(&name));
    if !listed {
        return false;
    }
    let names_a_file = |arg: &str| {
        path_like(arg) || {
            let p = cwd.map_or_else(|| PathBuf::from(arg), |c| c.join(arg));
            host.exists(&p)
        }
    };
    words[1..].iter().all(|arg| {
        if arg == "-" {
            return true;
        }
        if arg.starts_with('-') {
            return match arg.split_once('=') {
                Some((_, value)) => !names_a_file(value),
                None => true,
            };
        }
        !names_a_file(arg)
    })
}

fn path_like(arg: &str) -> bool {
    arg.starts_with('/') || arg.starts_with("./") || arg.starts_with("../") || arg.starts_with('~')
}

fn expand_home(word: &str, home: Option<&Path>) -> String {
    match (word.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.display())
        }
        _ => word.to_string(),
    }
}

/// Longer patterns match nothing.
pub const MAX_PATTERN_BYTES: usize = 1024;
const PATH_MAX: usize = 4096;

/// Whether `pattern` matches `path`: `**` any characters, `*` any within one path component, `?`
/// one character within a component; everything else literal, ASCII case-insensitive (other
/// letters must match exactly, so lookalikes do not pass). A pattern without `/` (a bare name)
/// never matches: it would allow whatever PATH finds.
pub fn pattern_matches(pattern: &str, path: &str, home: Option<&Path>) -> bool {
    let pattern = expand_home(pattern.trim(), home);
    // Bounds the matcher's memory (pattern × path): no real path is longer than PATH_MAX, and
    // no pattern of a program's path needs to be longer than this.
    if !pattern.contains('/') || pattern.len() > MAX_PATTERN_BYTES || path.len() > PATH_MAX {
        return false;
    }
    glob(pattern.as_bytes(), path.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // `*` and `**` try the rest of the pattern at many places; remembering which (pattern,
    // path) positions already failed keeps that polynomial. Without it a pattern of a dozen
    // `**` takes exponential time, and a node would hang on one command.
    let mut failed = vec![false; (p.len() + 1) * (s.len() + 1)];
    glob_at(p, s, 0, 0, &mut failed)
}

/// Whether `p[i..]` matches `s[j..]`.
fn glob_at(p: &[u8], s: &[u8], i: usize, j: usize, failed: &mut [bool]) -> bool {
    let seen = i * (s.len() + 1) + j;
    if failed[seen] {
        return false;
    }
    let matched = match &p[i..] {
        [] => j == s.len(),
        [b'*', b'*', ..] => (j..=s.len()).any(|k| glob_at(p, s, i + 2, k, failed)),
        [b'*', ..] => {
            let component = s[j..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(s.len(), |n| j + n);
            (j..=component).any(|k| glob_at(p, s, i + 1, k, failed))
        }
        [b'?', ..] => j < s.len() && s[j] != b'/' && glob_at(p, s, i + 1, j + 1, failed),
        [c, ..] => {
            j < s.len() && c.eq_ignore_ascii_case(&s[j]) && glob_at(p, s, i + 1, j + 1, failed)
        }
    };
    if !matched {
        failed[seen] = true;
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::analyze;
    use std::collections::BTreeMap;

    /// A machine with a few programs; `links` are symlinks to their real paths.
    struct Fake {
        programs: Vec<&'static str>,
        links: BTreeMap<&'static str, &'static str>,
        files: Vec<&'static str>,
    }

    impl Host for Fake {
        fn resolve(&self, program: &str, cwd: Option<&Path>) -> Option<PathBuf> {
            let candidates: Vec<String> = if program.contains('/') {
                vec![if program.starts_with('/') {
                    program.to_string()
                } else {
                    cwd?.join(program).to_string_lossy().into_owned()
                }]
            } else {
                ["/usr/local/bin", "/usr/bin", "/bin"]
                    .iter()
                    .map(|d| format!("{d}/{program}"))
                    .collect()
            };
            candidates.into_iter().find_map(|c| {
                let real = self
                    .links
                    .get(c.as_str())
                    .map_or(c.clone(), |t| t.to_string());
                self.programs
                    .contains(&real.as_str())
                    .then(|| PathBuf::from(real))
            })
        }
        fn exists(&self, path: &Path) -> bool {
            self.files.iter().any(|f| Path::new(f) == path)
        }
        fn home(&self) -> Option<PathBuf> {
            Some("/home/me".into())
        }
    }

    fn machine() -> Fake {
        Fake {
            programs: vec![
                "/usr/bin/ls",
                "/usr/bin/df",
                "/usr/bin/uptime",
                "/usr/bin/grep",
                "/usr/bin/head",
                "/usr/bin/rm",
                "/usr/bin/python3.11",
                "/usr/bin/docker",
                "/home/me/bin/deploy",
            ],
            links: BTreeMap::from([
                ("/usr/bin/python3", "/usr/bin/python3.11"),
                // Looks like ls, is rm.
                ("/tmp/ls", "/usr/bin/rm"),
                ("/home/me/bin/head", "/usr/bin/rm"),
            ]),
            files: vec!["/home/me/secrets.txt", "/work/notes"],
        }
    }

    fn allow(patterns: &[&str]) -> Vec<AllowEntry> {
        patterns.iter().map(|p| AllowEntry::new(*p)).collect()
    }

    fn safe() -> Vec<String> {
        default_safe_bins()
    }

    fn passes(line: &str, patterns: &[&str]) -> bool {
        let cmds = match analyze::shell(line) {
            Ok(c) => c,
            Err(_) => return false,
        };
        check(
            &cmds,
            &allow(patterns),
            &safe(),
            &machine(),
            Some(Path::new("/work")),
        )
        .satisfied
    }

    #[test]
    fn globs_match_paths_as_documented() {
        let m = |p, s| pattern_matches(p, s, Some(Path::new("/home/me")));
        assert!(m("/usr/bin/ls", "/usr/bin/ls"));
        assert!(
            m("/USR/BIN/LS", "/usr/bin/ls"),
            "ASCII case does not matter"
        );
        assert!(m("/usr/bin/*", "/usr/bin/ls"));
        assert!(
            !m("/usr/bin/*", "/usr/bin/x/ls"),
            "* stays in one component"
        );
        assert!(m("/opt/**/rg", "/opt/a/b/rg"));
        assert!(
            !m("/opt/**/rg", "/opt/rg"),
            "as in Clawdbot: ** needs its slashes"
        );
        assert!(m("/usr/bin/python3.1?", "/usr/bin/python3.11"));
        assert!(
            !m("/usr/bin/python3.11", "/usr/bin/python3x11"),
            ". is literal here"
        );
        assert!(!m("/usr/bin/l?", "/usr/bin/l/"));
        assert!(m("~/bin/deploy", "/home/me/bin/deploy"));
        assert!(!m("ls", "/usr/bin/ls"), "a bare name never matches");
        assert!(!m("/usr/bin/ls", "/usr/bin/ls2"));
        // Cyrillic 'с' (U+0441) is not 'c'; the Kelvin sign is not 'k'.
        assert!(!m("/usr/bin/cat", "/usr/bin/\u{0441}at"));
        assert!(!m("/usr/bin/kill", "/usr/bin/\u{212A}ill"));
    }

    #[test]
    fn many_stars_are_matched_in_bounded_time() {
        // Each `**` retries the rest at every position: without memory of what failed, twelve
        // of them against a deep path take exponential time (a node hangs on one command).
        let pattern = format!("{}/x", "/**".repeat(12));
        let path = format!("{}/y", "/a".repeat(40));
        let started = std::time::Instant::now();
        assert!(!pattern_matches(&pattern, &path, None));
        assert!(pattern_matches(
            &pattern,
            &format!("{}/x", "/a".repeat(40)),
            None
        ));
        let star = format!("/{}x", "*".repeat(40));
        assert!(!pattern_matches(
            &star,
            &format!("/{}", "a".repeat(200)),
            None
        ));
        println!("12 `**` against 40 components: {:?}", started.elapsed());
        let huge = format!("/{}", "*".repeat(MAX_PATTERN_BYTES));
        assert!(
            !pattern_matches(&huge, "/usr/bin/ls", None),
            "over-long patterns match nothing"
        );
    }

    #[test]
    fn a_table_of_tricky_commands() {
        let list = [
            "/usr/bin/ls",
            "/usr/bin/df",
            "/usr/bin/uptime",
            "/usr/bin/python3",
        ];
        for (line, expected) in [
            ("ls -la", true),
            ("  ls   '-la' ", true),
            ("/usr/bin/ls", true),
            ("uptime && df -h", true),
            ("uptime && rm -rf /", false),
            ("ls; rm x", false),
            ("ls || rm x", false),
            ("ls | grep foo", true),
            ("ls | head -n 5", true),
            ("ls | rm", false),
            ("grep pass /home/me/secrets.txt", false),
            ("grep pass ~/secrets.txt", false),
            ("grep pass notes", false),
            ("grep --file=/etc/shadow x", false),
            ("head -", true),
            ("ls > /tmp/x", false),
            ("ls $(rm x)", false),
            ("ls \"$(rm x)\"", false),
            ("ls `rm x`", false),
            ("LD_PRELOAD=/tmp/evil.so ls", false),
            ("./ls", false),
            ("../bin/ls", false),
            ("/tmp/ls -la", false),
            ("python3 -c 'print(1)'", false),
            ("python3.11 -c 'print(1)'", false),
            ("/home/me/bin/head -n 1", false),
            ("l\u{0455} -la", false),
            ("nosuchprogram", false),
            ("'ls' -la", true),
            ("l\\s -la", true),
        ] {
            assert_eq!(passes(line, &list), expected, "{line:?}");
        }
    }

    #[test]
    fn a_symlinked_allowlisted_name_is_judged_by_its_target() {
        // /usr/bin/python3 is a link to python3.11: the pattern for the link does not cover it,
        // and the real path's pattern does.
        assert!(!passes("python3 -V", &["/usr/bin/python3"]));
        assert!(passes("python3 -V", &["/usr/bin/python3.11"]));
    }

    #[test]
    fn the_outcome_says_what_missed_and_which_entries_matched() {
        let cmds = analyze::shell("uptime && ls && uptime && docker ps").unwrap();
        let list = allow(&["/usr/bin/ls", "/usr/bin/uptime"]);
        let c = check(&cmds, &list, &safe(), &machine(), None);
        assert!(!c.satisfied);
        assert_eq!(c.matched, vec![1, 0]);
        assert_eq!(
            c.miss.as_deref(),
            Some("/usr/bin/docker is not on the allowlist")
        );
        assert_eq!(c.resolved[3].as_deref(), Some(Path::new("/usr/bin/docker")));
        let cmds = analyze::shell("frobnicate").unwrap();
        let c = check(&cmds, &list, &safe(), &machine(), None);
        assert_eq!(
            c.miss.as_deref(),
            Some("`frobnicate` is not an executable on this machine")
        );
    }

    #[test]
    fn an_empty_safe_bin_list_turns_safe_bins_off() {
        let cmds = analyze::shell("ls | grep x").unwrap();
        let list = allow(&["/usr/bin/ls"]);
        assert!(check(&cmds, &list, &safe(), &machine(), None).satisfied);
        assert!(!check(&cmds, &list, &[], &machine(), None).satisfied);
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// Command lines edited anywhere (chains, quotes, substitutions, globs): when the check
        /// passes, every program that would run is one the allowlist or the safe bins name —
        /// never `rm`, whatever it is disguised as.
        #[test]
        fn fuzz_allowlist_check(edits in crate::util::fuzz::edits(), which in 0usize..3) {
            let seeds = [
                "ls -la /tmp && df -h | grep x; uptime",
                "head -n 3 < /dev/null || /tmp/ls ~/bin/head \"$(id)\"",
                "python3 -c 'print(1)' & ls `df` ${HOME}/x",
            ];
            let line = crate::util::fuzz::apply(seeds[which], &edits);
            let allow: Vec<AllowEntry> = ["/usr/bin/ls", "/usr/bin/df", "/usr/bin/uptime"]
                .iter()
                .map(|p| AllowEntry::new(*p))
                .collect();
            if let Ok(cmds) = analyze::shell(&line) {
                let c = check(&cmds, &allow, &default_safe_bins(), &machine(), None);
                if c.satisfied {
                    for p in c.resolved.iter().flatten() {
                        let p = p.to_string_lossy();
                        proptest::prop_assert!(
                            ["/usr/bin/ls", "/usr/bin/df", "/usr/bin/uptime", "/usr/bin/grep", "/usr/bin/head"].contains(&p.as_ref()),
                            "{line:?} passed running {p}"
                        );
                    }
                }
            }
        }

        /// Patterns edited anywhere (many `*` and `**` included) match or not in bounded time.
        #[test]
        fn fuzz_patterns(edits in crate::util::fuzz::edits(), path in "(/[a-z*?]{0,12}){0,12}") {
            let pattern = crate::util::fuzz::apply("/usr/**/bin/*-?.sh", &edits);
            let _ = pattern_matches(&pattern, &path, Some(Path::new("/home/me")));
        }
    }
}
