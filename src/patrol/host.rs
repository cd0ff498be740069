//! Host patrol (standalone gateway): load, CPU and IO wait, memory and swap, disks, listening
//! ports and top processes of the machine it runs on, read from /proc and statvfs (Linux only).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{Finding, Part, Severity};
use crate::crd::cron::{PatrolCheck, PatrolThresholds};

/// Long enough for CPU and IO wait percentages to mean something, short enough for a chat turn.
const SAMPLE: Duration = Duration::from_millis(500);
const TOP: usize = 5;
const MAX_PORTS: usize = 40;
/// Filesystems without user data, and network ones whose statvfs can hang on a dead server.
/// `overlay` is kept only at `/`: in a container that is the disk the gateway writes to; elsewhere
/// it is a container's view of a disk already listed.
const SKIP_FS: &str = "proc sysfs tmpfs devtmpfs devpts ramfs securityfs pstore bpf debugfs \
    tracefs configfs fusectl mqueue hugetlbfs autofs binfmt_misc rpc_pipefs nsfs squashfs efivarfs \
    selinuxfs nfsd iso9660 fuse.lxcfs fuse.gvfsd-fuse fuse.portal fuse.snapfuse nfs nfs4 cifs smb3 \
    9p fuse.sshfs";

/// The machine's name, for the report scope `host <name>`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Samples the machine; the blocking reads and the sampling pause run off the async runtime.
pub async fn collect(thresholds: &PatrolThresholds) -> Part {
    let thresholds = thresholds.clone();
    tokio::task::spawn_blocking(move || collect_blocking(&thresholds))
        .await
        .unwrap_or_else(|e| Part {
            skipped: vec![format!("host: collector failed: {e}")],
            ..Default::default()
        })
}

fn collect_blocking(t: &PatrolThresholds) -> Part {
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

fn parse_loadavg(s: &str) -> Option<[f64; 3]> {
    let mut it = s.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Aggregate CPU jiffies from the `cpu` line of /proc/stat.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CpuTimes {
    total: u64,
    idle: u64,
    iowait: u64,
}

fn parse_stat_cpu(s: &str) -> Option<CpuTimes> {
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map_while(|v| v.parse().ok())
        .collect();
    // guest and guest_nice (fields 9 and 10) are already counted in user and nice.
    Some(CpuTimes {
        total: f.iter().take(8).sum(),
        idle: *f.get(3)?,
        iowait: f.get(4).copied().unwrap_or(0),
    })
}

fn count_cpus(s: &str) -> usize {
    s.lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count()
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct CpuUsage {
    busy: f64,
    iowait: f64,
    jiffies: u64,
}

fn cpu_usage(a: CpuTimes, b: CpuTimes) -> Option<CpuUsage> {
    let dt = b.total.checked_sub(a.total).filter(|d| *d > 0)?;
    let idle = b.idle.saturating_sub(a.idle);
    let iowait = b.iowait.saturating_sub(a.iowait);
    Some(CpuUsage {
        busy: dt.saturating_sub(idle + iowait) as f64 * 100.0 / dt as f64,
        iowait: iowait as f64 * 100.0 / dt as f64,
        jiffies: dt,
    })
}

/// Bytes, from /proc/meminfo.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Memory {
    total: u64,
    available: u64,
    swap_total: u64,
    swap_free: u64,
}

fn parse_meminfo(s: &str) -> Option<Memory> {
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some(Memory {
        total: field("MemTotal").filter(|t| *t > 0)?,
        available: field("MemAvailable")?,
        swap_total: field("SwapTotal").unwrap_or(0),
        swap_free: field("SwapFree").unwrap_or(0),
    })
}

/// Mounts worth a disk check: real filesystems on directories (containers bind single files such
/// as /etc/hosts), one per device so bind mounts and btrfs subvolumes count once.
fn parse_mounts(s: &str, is_dir: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = HashSet::new();
    s.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (device, point, fstype) = (f.next()?, unescape(f.next()?), f.next()?);
            let pseudo = SKIP_FS.split(' ').any(|f| f == fstype) || fstype.starts_with("cgroup");
            let keep = !pseudo && (fstype != "overlay" || point == "/");
            (keep && is_dir(&point) && seen.insert(device)).then_some(point)
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in mount points as octal escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(c as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out + rest
}

/// Adds the listening ports of /proc/net/tcp or tcp6, each with whether it is on loopback only.
fn parse_listening(s: &str, ports: &mut BTreeMap<u16, bool>) {
    let listeners = s.lines().skip(1).filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (addr, port) = f.get(1)?.split_once(':')?;
        (f.get(3) == Some(&"0A")).then_some(())?;
        let lo = proc_addr(addr).is_some_and(|a| match a {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
        });
        Some((u16::from_str_radix(port, 16).ok()?, lo))
    });
    for (port, lo) in listeners {
        // One listener on all addresses makes the port reachable from outside.
        *ports.entry(port).or_insert(lo) &= lo;
    }
}

/// The kernel prints addresses as 32-bit words in host byte order.
fn proc_addr(hex: &str) -> Option<IpAddr> {
    let mut b = Vec::with_capacity(16);
    for i in (0..hex.len()).step_by(8) {
        b.extend(
            u32::from_str_radix(hex.get(i..i + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        );
    }
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
        _ => None,
    }
}

/// Name and resident bytes from /proc/[pid]/status; kernel threads have no VmRSS and are left out.
fn parse_proc_status(s: &str) -> Option<(String, u64)> {
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
    };
    let rss = field("VmRSS")?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some((field("Name")?.trim().to_string(), rss * 1024))
}

/// utime + stime from /proc/[pid]/stat; the name before them may hold spaces and parentheses.
fn parse_proc_ticks(s: &str) -> Option<u64> {
    let mut f = s.get(s.rfind(')')? + 1..)?.split_whitespace().skip(11);
    Some(f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?)
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
struct Proc {
    pid: u32,
    name: String,
    rss: u64,
    /// Percent of one CPU over the sample.
    cpu: f64,
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
struct DiskUsage {
    size: u64,
    used: u64,
    avail: u64,
    inodes: u64,
    inodes_free: u64,
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

fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 30) as f64)
}

/// Percent used, rounded up like df: 99.2% full is not "99% and fine".
fn percent(used: u64, total: u64) -> u64 {
    (used * 100).div_ceil(total.max(1))
}

fn quote(p: &str) -> String {
    if p.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        p.to_string()
    } else {
        format!("'{}'", p.replace('\'', r"'\''"))
    }
}

fn level(critical: bool) -> Severity {
    if critical {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

fn finding(severity: Severity, subject: &str, problem: String, action: String) -> Finding {
    Finding::new(severity, PatrolCheck::Host, subject, problem, action)
}

fn analyze_cpu(
    load: Option<[f64; 3]>,
    cpus: usize,
    usage: Option<CpuUsage>,
    procs: &[Proc],
) -> Part {
    let mut part = Part::default();
    let mut fact = Vec::new();
    let busiest = procs
        .iter()
        .filter(|p| p.cpu >= 1.0)
        .max_by(|a, b| a.cpu.total_cmp(&b.cpu))
        .map(|p| format!(" (busiest now: {p} {:.0}%)", p.cpu))
        .unwrap_or_default();
    if let Some([one, five, fifteen]) = load {
        fact.push(format!(
            "load {one:.2} {five:.2} {fifteen:.2} on {cpus} CPUs"
        ));
        if five > 2.0 * cpus as f64 {
            part.findings.push(finding(
                Severity::Warning,
                "load",
                format!("5-minute load {five:.2} is over twice the {cpus} CPUs"),
                format!("top -o %CPU{busiest}; if the CPUs are idle, processes wait on disk: iostat -x 5 3"),
            ));
        }
    }
    if let Some(u) = usage {
        fact.push(format!("CPU {:.0}% busy, {:.0}% IO wait", u.busy, u.iowait));
        if u.iowait > 20.0 {
            part.findings.push(finding(
                Severity::Warning,
                "IO wait",
                format!(
                    "CPUs spent {:.0}% of the sample waiting on disk or network IO",
                    u.iowait
                ),
                "iostat -x 5 3 to find the busy disk, then sudo iotop -o for the process".into(),
            ));
        }
    }
    if !fact.is_empty() {
        part.facts.push(fact.join("; "));
    }
    part
}

fn analyze_memory(m: &Memory, procs: &[Proc]) -> Part {
    let mut part = Part::default();
    let avail = m.available as f64 * 100.0 / m.total as f64;
    let swap_used = m.swap_total.saturating_sub(m.swap_free);
    let swap = match m.swap_total {
        0 => "no swap".to_string(),
        t => format!("swap {} of {} GiB", gib(swap_used), gib(t)),
    };
    let used = m.total.saturating_sub(m.available);
    part.facts.push(format!(
        "memory {} of {} GiB used ({avail:.0}% available); {swap}",
        gib(used),
        gib(m.total)
    ));
    if avail < 10.0 {
        let biggest = procs
            .iter()
            .max_by_key(|p| p.rss)
            .map(|p| format!("; biggest: {p} {} MiB", p.rss >> 20))
            .unwrap_or_default();
        part.findings.push(finding(
            level(avail < 5.0),
            "memory",
            format!(
                "only {avail:.0}% of {} GiB available{biggest}",
                gib(m.total)
            ),
            "free -h; top -o %MEM to see what grows; journalctl -k | grep -i oom for kills".into(),
        ));
    }
    if m.swap_total > 0 && swap_used * 2 > m.swap_total {
        part.findings.push(finding(
            Severity::Warning,
            "swap",
            format!(
                "{}% of swap used ({} of {} GiB)",
                percent(swap_used, m.swap_total),
                gib(swap_used),
                gib(m.swap_total)
            ),
            "free -h; grep VmSwap /proc/*/status | sort -k2 -n | tail for who is swapped out"
                .into(),
        ));
    }
    part
}

fn analyze_disk(point: &str, d: &DiskUsage, t: &PatrolThresholds) -> Part {
    let mut part = Part::default();
    let threshold = u64::from(t.disk_percent);
    let subject = format!("disk {point}");
    let used = percent(d.used, d.used + d.avail);
    let inodes = (d.inodes > 0).then(|| percent(d.inodes.saturating_sub(d.inodes_free), d.inodes));
    let inode_fact = inodes
        .map(|i| format!(" (inodes {i}%)"))
        .unwrap_or_default();
    part.facts.push(format!(
        "disk {point} {used}% used of {} GiB{inode_fact}",
        gib(d.size)
    ));
    if used >= threshold {
        part.findings.push(finding(
            level(used >= 95),
            &subject,
            format!(
                "{used}% used, {} GiB free of {} GiB",
                gib(d.avail),
                gib(d.size)
            ),
            format!("du -xh {} 2>/dev/null | sort -h | tail -20", quote(point)),
        ));
    }
    if let Some(i) = inodes.filter(|i| *i >= threshold) {
        let p = quote(point);
        part.findings.push(finding(
            level(i >= 95),
            &subject,
            format!("{i}% of inodes used ({} free): many small files", d.inodes_free),
            format!("df -i {p}; sudo find {p} -xdev -type f | sed 's|/[^/]*$||' | sort | uniq -c | sort -n | tail"),
        ));
    }
    part
}

fn ports_fact(ports: &BTreeMap<u16, bool>) -> String {
    let mut list: Vec<String> = ports
        .iter()
        .take(MAX_PORTS)
        .map(|(p, lo)| {
            if *lo {
                format!("{p} (loopback)")
            } else {
                p.to_string()
            }
        })
        .collect();
    if ports.len() > MAX_PORTS {
        list.push(format!("… and {} more", ports.len() - MAX_PORTS));
    }
    if list.is_empty() {
        list.push("none".into());
    }
    format!("listening TCP ports: {}", list.join(", "))
}

fn process_facts(mut procs: Vec<Proc>) -> Vec<String> {
    let top = |label: &str, procs: &[Proc], show: &dyn Fn(&Proc) -> Option<String>| {
        let list: Vec<String> = procs.iter().filter_map(show).take(TOP).collect();
        (!list.is_empty()).then(|| format!("top {label}: {}", list.join(", ")))
    };
    procs.sort_by_key(|p| std::cmp::Reverse(p.rss));
    let mem = top("memory", &procs, &|p| {
        Some(format!("{p} {} MiB", p.rss >> 20))
    });
    procs.sort_by(|a, b| b.cpu.total_cmp(&a.cpu));
    let cpu = top("CPU", &procs, &|p| {
        (p.cpu >= 1.0).then(|| format!("{p} {:.0}%", p.cpu))
    });
    mem.into_iter().chain(cpu).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn disk(used_pct: u64, inode_pct: u64) -> DiskUsage {
        DiskUsage {
            size: 100 * GIB,
            used: used_pct * GIB,
            avail: (100 - used_pct) * GIB,
            inodes: 1000,
            inodes_free: 1000 - inode_pct * 10,
        }
    }

    fn mem(avail_pct: u64, swap_free_pct: u64) -> Memory {
        Memory {
            total: 100 * GIB,
            available: avail_pct * GIB,
            swap_total: 10 * GIB,
            swap_free: swap_free_pct * GIB / 10,
        }
    }

    fn proc(name: &str, rss_mib: u64, cpu: f64) -> Proc {
        Proc {
            pid: 42,
            name: name.into(),
            rss: rss_mib << 20,
            cpu,
        }
    }

    fn usage(busy: f64, iowait: f64) -> Option<CpuUsage> {
        Some(CpuUsage {
            busy,
            iowait,
            jiffies: 100,
        })
    }

    #[test]
    fn parses_loadavg_and_cpu_times() {
        assert_eq!(
            parse_loadavg("0.43 1.13 1.51 1/83 1645\n"),
            Some([0.43, 1.13, 1.51])
        );
        assert_eq!(parse_loadavg("garbage"), None);
        let a = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
        let b = "cpu  160 0 70 900 70 0 0 0 0 0\n";
        let (a, b) = (parse_stat_cpu(a).expect("a"), parse_stat_cpu(b).expect("b"));
        assert_eq!(
            a,
            CpuTimes {
                total: 1000,
                idle: 800,
                iowait: 50
            }
        );
        let u = cpu_usage(a, b).expect("usage");
        assert_eq!((u.busy, u.iowait, u.jiffies), (40.0, 10.0, 200));
        assert_eq!(cpu_usage(b, a), None);
        assert_eq!(
            count_cpus("cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 3 4\nctxt 9\n"),
            2
        );
        assert_eq!(parse_stat_cpu("intr 1 2\n"), None);
    }

    #[test]
    fn parses_meminfo() {
        let s = "MemTotal:  16000 kB\nMemFree: 100 kB\nMemAvailable:  4000 kB\nSwapTotal: 2000 kB\nSwapFree: 500 kB\n";
        let m = parse_meminfo(s).expect("meminfo");
        assert_eq!(
            m,
            Memory {
                total: 16000 << 10,
                available: 4000 << 10,
                swap_total: 2000 << 10,
                swap_free: 500 << 10
            }
        );
        assert_eq!(parse_meminfo("MemTotal: 16000 kB\nMemFree: 100 kB\n"), None);
    }

    #[test]
    fn mounts_skip_pseudo_filesystems_duplicates_and_files() {
        let s = "proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n\
                 cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n/dev/vda /var/lib/docker ext4 rw 0 0\n\
                 overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n/dev/sdb1 /etc/hosts ext4 rw 0 0\n\
                 /dev/sdb1 /media/My\\040Disk ext4 rw 0 0\ntank/data /tank/data zfs rw 0 0\n\
                 /dev/loop0 /snap/core/1 squashfs ro 0 0\nserver:/x /mnt/nfs nfs4 rw 0 0\n";
        assert_eq!(
            parse_mounts(s, |p| p != "/etc/hosts"),
            ["/", "/media/My Disk", "/tank/data"]
        );
        assert_eq!(parse_mounts("overlay / overlay rw 0 0\n", |_| true), ["/"]);
        assert_eq!(unescape(r"a\134b\0"), r"a\b\0");
    }

    #[test]
    fn parses_listening_ports_and_loopback() {
        let v4 = "  sl  local_address rem_address   st tx_queue\n\
                  0: 00000000:0016 00000000:0000 0A 0:0\n\
                  1: 0100007F:1538 00000000:0000 0A 0:0\n\
                  2: 0100007F:C350 0200007F:0016 01 0:0\n";
        let v6 = "  sl  local_address remote_address st\n\
                  0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0\n\
                  1: 00000000000000000000000001000000:4965 00000000000000000000000000000000:0000 0A 0\n\
                  2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 0\n";
        let mut ports = BTreeMap::new();
        parse_listening(v4, &mut ports);
        assert_eq!(ports, BTreeMap::from([(22, false), (5432, true)]));
        parse_listening(v6, &mut ports);
        assert_eq!(
            ports_fact(&ports),
            "listening TCP ports: 22, 80 (loopback), 5432 (loopback), 18789 (loopback)"
        );
        assert_eq!(ports_fact(&BTreeMap::new()), "listening TCP ports: none");
    }

    #[test]
    fn parses_process_status_and_ticks() {
        let status = "Name:\tpostgres\nUmask:\t0077\nVmRSS:\t  831488 kB\nThreads:\t1\n";
        assert_eq!(
            parse_proc_status(status),
            Some(("postgres".into(), 831488 << 10))
        );
        assert_eq!(parse_proc_status("Name:\tkthreadd\nThreads:\t1\n"), None);
        let stat = "42 (tmux: a) (b) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 0";
        assert_eq!(parse_proc_ticks(stat), Some(325));
        assert_eq!(parse_proc_ticks("42 (x) S 1"), None);
        let facts = process_facts(vec![
            proc("a", 10, 0.0),
            proc("postgres", 812, 150.0),
            proc("b", 20, 0.2),
        ]);
        assert_eq!(
            facts,
            [
                "top memory: postgres (42) 812 MiB, b (42) 20 MiB, a (42) 10 MiB",
                "top CPU: postgres (42) 150%"
            ]
        );
    }

    #[test]
    fn full_disk_and_inodes_are_findings() {
        let t = PatrolThresholds::default();
        let p = analyze_disk("/var", &disk(96, 10), &t);
        assert_eq!(p.facts, ["disk /var 96% used of 100.0 GiB (inodes 10%)"]);
        let [f] = p.findings.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(
            (f.severity, f.subject.as_str()),
            (Severity::Critical, "disk /var")
        );
        assert_eq!(f.action, "du -xh /var 2>/dev/null | sort -h | tail -20");
        let p = analyze_disk("/media/My Disk", &disk(88, 90), &t);
        assert_eq!(p.findings.len(), 2, "{p:?}");
        assert_eq!(p.findings[0].severity, Severity::Warning);
        assert!(p.findings[1].problem.contains("90% of inodes"), "{p:?}");
        assert!(
            p.findings[1].action.starts_with("df -i '/media/My Disk';"),
            "{p:?}"
        );
        let strict = PatrolThresholds {
            disk_percent: 50,
            ..Default::default()
        };
        assert_eq!(analyze_disk("/", &disk(60, 0), &strict).findings.len(), 1);
    }

    #[test]
    fn low_memory_and_swap_are_findings() {
        let procs = [proc("java", 9000, 0.0)];
        let p = analyze_memory(&mem(8, 100), &procs);
        let [f] = p.findings.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(
            (f.severity, f.subject.as_str()),
            (Severity::Warning, "memory")
        );
        assert!(f.problem.contains("biggest: java (42) 9000 MiB"), "{f:?}");
        assert!(
            f.action.contains("free -h") && f.action.contains("top -o %MEM"),
            "{f:?}"
        );
        assert_eq!(
            analyze_memory(&mem(3, 100), &procs).findings[0].severity,
            Severity::Critical
        );
        let p = analyze_memory(&mem(50, 30), &[]);
        let [f] = p.findings.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(
            (f.severity, f.subject.as_str()),
            (Severity::Warning, "swap")
        );
        assert!(f.problem.starts_with("70% of swap used"), "{f:?}");
        assert_eq!(
            p.facts,
            ["memory 50.0 of 100.0 GiB used (50% available); swap 7.0 of 10.0 GiB"]
        );
    }

    #[test]
    fn high_load_and_iowait_are_findings() {
        let procs = [proc("ffmpeg", 100, 180.0)];
        let p = analyze_cpu(Some([12.0, 9.5, 4.0]), 4, usage(90.0, 35.0), &procs);
        assert_eq!(
            p.facts,
            ["load 12.00 9.50 4.00 on 4 CPUs; CPU 90% busy, 35% IO wait"]
        );
        let subjects: Vec<&str> = p.findings.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, ["load", "IO wait"]);
        assert!(p.findings.iter().all(|f| f.severity == Severity::Warning));
        assert!(
            p.findings[0]
                .action
                .contains("busiest now: ffmpeg (42) 180%"),
            "{p:?}"
        );
        assert!(p.findings[1].action.contains("iostat -x 5 3"), "{p:?}");
    }

    #[test]
    fn healthy_machine_has_no_findings() {
        let t = PatrolThresholds::default();
        let mut p = analyze_cpu(Some([0.4, 0.35, 0.3]), 4, usage(12.0, 1.0), &[]);
        p.extend(analyze_memory(&mem(80, 100), &[]));
        p.extend(analyze_disk("/", &disk(41, 5), &t));
        assert_eq!(p.findings, []);
        assert_eq!(p.facts.len(), 3, "{p:?}");
        assert!(p.facts[2].starts_with("disk / 41% used"), "{p:?}");
    }

    #[tokio::test]
    async fn collects_this_machine() {
        let p = collect(&PatrolThresholds::default()).await;
        assert!(p.facts.iter().any(|f| f.starts_with("memory ")), "{p:?}");
        assert!(p.facts.iter().any(|f| f.starts_with("disk / ")), "{p:?}");
        assert!(p.facts.iter().any(|f| f.starts_with("load ")), "{p:?}");
        assert!(
            p.facts.iter().any(|f| f.starts_with("top memory: ")),
            "{p:?}"
        );
        assert!(!hostname().is_empty());
    }
}
