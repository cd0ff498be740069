//! Judging a host sample: facts for the report, and findings where load, IO wait, memory, swap
//! or a disk crosses its line, each with a command to look closer. Pure.

use std::collections::BTreeMap;

use super::procfs::{CpuUsage, Memory};
use super::sample::{DiskUsage, Proc};
use crate::crd::cron::{PatrolCheck, PatrolThresholds};
use crate::patrol::{Finding, Part, Severity};

const TOP: usize = 5;
const MAX_PORTS: usize = 40;

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

pub(super) fn analyze_cpu(
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

pub(super) fn analyze_memory(m: &Memory, procs: &[Proc]) -> Part {
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

pub(super) fn analyze_disk(point: &str, d: &DiskUsage, t: &PatrolThresholds) -> Part {
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

pub(super) fn ports_fact(ports: &BTreeMap<u16, bool>) -> String {
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

pub(super) fn process_facts(mut procs: Vec<Proc>) -> Vec<String> {
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
pub(super) mod tests {
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

    pub(in crate::patrol::host) fn proc(name: &str, rss_mib: u64, cpu: f64) -> Proc {
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
}
