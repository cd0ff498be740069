//! Taking the host sample — /proc, statvfs, and the pause between two CPU readings — and
//! handing each reading to the analysis as it comes. All of the host check's I/O is here.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::analysis::{analyze_cpu, analyze_disk, analyze_memory, ports_fact, process_facts};
use super::procfs::{
    count_cpus, cpu_usage, parse_listening, parse_loadavg, parse_meminfo, parse_mounts,
    parse_proc_status, parse_proc_ticks, parse_stat_cpu,
};
use crate::crd::cron::PatrolThresholds;
use crate::patrol::Part;

/// Long enough for CPU and IO wait percentages to mean something, short enough for a chat turn.
const SAMPLE: Duration = Duration::from_millis(500);

pub(super) fn collect_blocking(t: &PatrolThresholds) -> Part {
    let mut part = Part::default();
    let before = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_stat_cpu(&s));
    let ticks_before: HashMap<u32, u64> = pids()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pid| Some((pid, proc_ticks(pid)?)))
        .collect();
    std::thread::sleep(SAMPLE);
    let stat = read(&mut part, "/proc/stat", |s| {
        Some((parse_stat_cpu(s)?, count_cpus(s)))
    });
    let cpus = stat
        .map(|(_, n)| n)
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    let usage = before.zip(stat).and_then(|(a, (b, _))| cpu_usage(a, b));
    // Process ticks count against one CPU, so the sample is divided among the CPUs.
    let one_cpu = usage.map(|u| u.jiffies as f64 / cpus as f64);
    let procs = match pids() {
        Ok(pids) => processes(pids, &ticks_before, one_cpu),
        Err(e) => {
            part.skipped.push(format!("host: /proc unreadable: {e}"));
            Vec::new()
        }
    };
    let load = read(&mut part, "/proc/loadavg", parse_loadavg);
    part.extend(analyze_cpu(load, cpus, usage, &procs));
    if let Some(m) = read(&mut part, "/proc/meminfo", parse_meminfo) {
        part.extend(analyze_memory(&m, &procs));
    }
    let is_dir = |p: &str| std::path::Path::new(p).is_dir();
    let mounts = read(&mut part, "/proc/self/mounts", |s| {
        Some(parse_mounts(s, is_dir))
    });
    for m in mounts.unwrap_or_default() {
        match statvfs(&m) {
            Ok(d) if d.size > 0 => part.extend(analyze_disk(&m, &d, t)),
            Ok(_) => {}
            Err(e) => part.skipped.push(format!("host: statvfs {m} failed: {e}")),
        }
    }
    // tcp6 is absent when IPv6 is disabled, which is no gap in the report.
    let tcp6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let ports = read(&mut part, "/proc/net/tcp", |tcp| {
        let mut ports = BTreeMap::new();
        parse_listening(tcp, &mut ports);
        parse_listening(&tcp6, &mut ports);
        Some(ports)
    });
    part.facts.extend(ports.map(|p| ports_fact(&p)));
    part.facts.extend(process_facts(procs));
    part
}

fn read<T>(part: &mut Part, path: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let v = parse(&s);
            if v.is_none() {
                part.skipped
                    .push(format!("host: {path} has an unexpected format"));
            }
            v
        }
        Err(e) => {
            part.skipped.push(format!("host: {path} unreadable: {e}"));
            None
        }
    }
}

fn pids() -> std::io::Result<Vec<u32>> {
    Ok(std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}

fn proc_ticks(pid: u32) -> Option<u64> {
    parse_proc_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Proc {
    pub(super) pid: u32,
    pub(super) name: String,
    pub(super) rss: u64,
    /// Percent of one CPU over the sample.
    pub(super) cpu: f64,
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.pid)
    }
}

fn processes(pids: Vec<u32>, before: &HashMap<u32, u64>, one_cpu: Option<f64>) -> Vec<Proc> {
    pids.into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let (name, rss) = parse_proc_status(&status)?;
            let cpu = match (before.get(&pid), proc_ticks(pid), one_cpu) {
                (Some(a), Some(b), Some(w)) if w > 0.0 => b.saturating_sub(*a) as f64 * 100.0 / w,
                _ => 0.0,
            };
            Some(Proc {
                pid,
                name,
                rss,
                cpu,
            })
        })
        .collect()
}

/// Bytes, from statvfs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct DiskUsage {
    pub(super) size: u64,
    pub(super) used: u64,
    pub(super) avail: u64,
    pub(super) inodes: u64,
    pub(super) inodes_free: u64,
}

// The fields are 32-bit on 32-bit targets such as a Raspberry Pi's armv7.
#[allow(clippy::unnecessary_cast)]
fn statvfs(path: &str) -> std::io::Result<DiskUsage> {
    let c = std::ffi::CString::new(path)?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is NUL-terminated and `s` is a writable statvfs the call fills in.
    if unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: zero-initialised and filled in by a successful call.
    let s = unsafe { s.assume_init() };
    let bs = s.f_frsize as u64;
    Ok(DiskUsage {
        size: s.f_blocks as u64 * bs,
        used: (s.f_blocks as u64).saturating_sub(s.f_bfree as u64) * bs,
        avail: s.f_bavail as u64 * bs,
        inodes: s.f_files as u64,
        inodes_free: s.f_ffree as u64,
    })
}
