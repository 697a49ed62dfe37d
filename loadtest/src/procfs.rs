//! What /proc says about a process and the machine: memory, CPU ticks, children, the CPU
//! model.
//! Missing values read as 0 (or "unknown"): a report with a blank cell beats no report.

use std::process::Command;

pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    proc_kb(&format!("/proc/{pid}/status"), field)
}

/// A `Field:   1234 kB` value from a /proc file such as `status` or `meminfo` (0 if absent).
pub fn proc_kb(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| kb_field(&s, field))
        .unwrap_or(0)
}

fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// utime + stime of a whole process (all threads), in clock ticks.
pub fn proc_cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_cpu_ticks(&stat)
}

fn stat_cpu_ticks(stat: &str) -> u64 {
    // Fields after the `(comm)`, which may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let get = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    get(14).unwrap_or(0) + get(15).unwrap_or(0)
}

/// The processes whose parent is `pid` (an nginx master's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| stat_ppid(&stat))
                == Some(pid)
        })
        .collect()
}

/// Field 4 of /proc/<pid>/stat, the parent's pid.
fn stat_ppid(stat: &str) -> Option<u32> {
    let rest = stat.rsplit_once(')').map(|(_, r)| r)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU model, cores, memory and kernel, for the report's header.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = proc_kb("/proc/meminfo", "MemTotal");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    format!(
        "{model}, {cores} cores (nproc), {:.1} GiB memory, Linux {kernel}",
        mem as f64 / 1024.0 / 1024.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kb_fields_and_cpu_ticks() {
        let status = "Name:\tmcp-obo\nVmHWM:\t   20480 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(kb_field(status, "VmRSS:"), Some(12345));
        assert_eq!(kb_field(status, "VmSwap:"), None);
        // A comm with spaces and a parenthesis; utime 7, stime 5.
        let stat = "42 (tokio (rt) w) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(stat_cpu_ticks(stat), 12);
        assert_eq!(stat_cpu_ticks(""), 0);
        assert!(proc_cpu_ticks("self") > 0 || proc_status_kb(std::process::id(), "VmRSS:") > 0);
    }

    #[test]
    fn finds_the_children_of_a_process() {
        let stat = "42 (nginx: worker (1)) S 7 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(stat_ppid(stat), Some(7));
        assert_eq!(stat_ppid(""), None);
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let found = children(std::process::id()).contains(&child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found, "a child of this process is among its children");
    }
}
