//! Resource usage from metrics-server as text: CPU in millicores, memory in MiB, for nodes with
//! their share of what is allocatable, for pods the biggest users first.

use std::fmt::Write;

use super::mib;

/// What one node or pod uses now.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    /// The node's name, or the pod's `namespace/name`.
    pub name: String,
    pub cpu_milli: u64,
    pub memory_bytes: u64,
    /// A node's allocatable (millicores, bytes), when its Node could be read.
    pub allocatable: Option<(u64, u64)>,
}

fn percent(used: u64, of: u64) -> String {
    match (used * 100).checked_div(of) {
        Some(p) => format!("{p}%"),
        None => "-".into(),
    }
}

/// Nodes by name, with their share of the allocatable.
pub fn nodes(mut rows: Vec<Usage>) -> String {
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::from("NAME  CPU(m)  CPU%  MEMORY(MiB)  MEMORY%");
    for r in &rows {
        let (cpu, mem) = r.allocatable.unwrap_or((0, 0));
        let _ = write!(
            out,
            "\n{}  {}  {}  {}  {}",
            r.name,
            r.cpu_milli,
            percent(r.cpu_milli, cpu),
            mib(r.memory_bytes),
            percent(r.memory_bytes, mem)
        );
    }
    out
}

/// The `limit` pods that use the most CPU (then memory), and the total of all.
pub fn pods(mut rows: Vec<Usage>, limit: usize) -> String {
    rows.sort_by(|a, b| {
        (b.cpu_milli, b.memory_bytes, &a.name).cmp(&(a.cpu_milli, a.memory_bytes, &b.name))
    });
    let mut out = String::from("NAMESPACE/NAME  CPU(m)  MEMORY(MiB)");
    for r in rows.iter().take(limit) {
        let _ = write!(
            out,
            "\n{}  {}  {}",
            r.name,
            r.cpu_milli,
            mib(r.memory_bytes)
        );
    }
    let rest = rows.len().saturating_sub(limit);
    if rest > 0 {
        let _ = write!(
            out,
            "\n… {rest} smaller not shown; raise limit (max 200) or give a namespace"
        );
    }
    let cpu: u64 = rows.iter().map(|r| r.cpu_milli).sum();
    let mem: u64 = rows.iter().map(|r| r.memory_bytes).sum();
    let _ = write!(
        out,
        "\ntotal of {} pods: cpu {cpu}m, memory {}MiB",
        rows.len(),
        mib(mem)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str, cpu: u64, mem_mib: u64, alloc: Option<(u64, u64)>) -> Usage {
        Usage {
            name: name.into(),
            cpu_milli: cpu,
            memory_bytes: mem_mib << 20,
            allocatable: alloc,
        }
    }

    #[test]
    fn nodes_show_their_share() {
        let text = nodes(vec![
            u("n2", 250, 512, None),
            u("n1", 2000, 7900, Some((4000, 8 << 30))),
        ]);
        assert_eq!(
            text,
            "NAME  CPU(m)  CPU%  MEMORY(MiB)  MEMORY%\nn1  2000  50%  7900  96%\nn2  250  -  512  -"
        );
    }

    #[test]
    fn pods_biggest_first_and_the_total() {
        let text = pods(
            vec![
                u("a/x", 5, 10, None),
                u("a/y", 900, 300, None),
                u("b/z", 40, 1000, None),
            ],
            2,
        );
        assert_eq!(
            text,
            "NAMESPACE/NAME  CPU(m)  MEMORY(MiB)\na/y  900  300\nb/z  40  1000\n\
             … 1 smaller not shown; raise limit (max 200) or give a namespace\n\
             total of 3 pods: cpu 945m, memory 1310MiB"
        );
    }
}
