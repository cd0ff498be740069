//! Reading the kernel's text: /proc/loadavg, /proc/stat, /proc/meminfo, /proc/self/mounts,
//! /proc/net/tcp{,6} and /proc/[pid]/{status,stat}. Pure: the text comes in, values go out.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Filesystems without user data, and network ones whose statvfs can hang on a dead server.
/// `overlay` is kept only at `/`: in a container that is the disk the gateway writes to; elsewhere
/// it is a container's view of a disk already listed.
const SKIP_FS: &str = "proc sysfs tmpfs devtmpfs devpts ramfs securityfs pstore bpf debugfs \
    tracefs configfs fusectl mqueue hugetlbfs autofs binfmt_misc rpc_pipefs nsfs squashfs efivarfs \
    selinuxfs nfsd iso9660 fuse.lxcfs fuse.gvfsd-fuse fuse.portal fuse.snapfuse nfs nfs4 cifs smb3 \
    9p fuse.sshfs";

pub(super) fn parse_loadavg(s: &str) -> Option<[f64; 3]> {
    let mut it = s.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Aggregate CPU jiffies from the `cpu` line of /proc/stat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CpuTimes {
    total: u64,
    idle: u64,
    iowait: u64,
}

pub(super) fn parse_stat_cpu(s: &str) -> Option<CpuTimes> {
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

pub(super) fn count_cpus(s: &str) -> usize {
    s.lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count()
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CpuUsage {
    pub(super) busy: f64,
    pub(super) iowait: f64,
    pub(super) jiffies: u64,
}

pub(super) fn cpu_usage(a: CpuTimes, b: CpuTimes) -> Option<CpuUsage> {
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
pub(super) struct Memory {
    pub(super) total: u64,
    pub(super) available: u64,
    pub(super) swap_total: u64,
    pub(super) swap_free: u64,
}

pub(super) fn parse_meminfo(s: &str) -> Option<Memory> {
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
pub(super) fn parse_mounts(s: &str, is_dir: impl Fn(&str) -> bool) -> Vec<String> {
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
pub(super) fn parse_listening(s: &str, ports: &mut BTreeMap<u16, bool>) {
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
pub(super) fn parse_proc_status(s: &str) -> Option<(String, u64)> {
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
pub(super) fn parse_proc_ticks(s: &str) -> Option<u64> {
    let mut f = s.get(s.rfind(')')? + 1..)?.split_whitespace().skip(11);
    Some(f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    // Two of the parsers are checked through the facts they end up in.
    use crate::patrol::host::analysis::{ports_fact, process_facts, tests::proc};

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
}
