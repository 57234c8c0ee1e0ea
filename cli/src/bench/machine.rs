//! The machine and builds a report names, and the CPU the benchmark itself uses.

use std::time::Duration;

use super::footprint;
use super::report::Machine;

/// CPU time (user and system) this process has used, from `/proc/self/stat`.
pub fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th
    // and 15th fields of the line, the 12th and 13th after it.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse().ok())
        .collect();
    // Linux reports these in clock ticks of 1/100 s (USER_HZ) on every common
    // architecture.
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// The machine's cores and CPU model, and the builds under test.
pub fn machine() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, model)| model.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    Machine {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model,
        bench_profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_owned(),
        services_profile: services_profile(),
    }
}

/// The profile of the running inventory service, from its executable's path.
fn services_profile() -> String {
    let found = footprint::find_processes();
    let Some(pid) = found.get("inventory").and_then(|pids| pids.first()) else {
        return "unknown (no inventory process found)".to_owned();
    };
    match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe) if exe.components().any(|part| part.as_os_str() == "release") => {
            "release".to_owned()
        }
        Ok(exe) if exe.components().any(|part| part.as_os_str() == "debug") => "debug".to_owned(),
        Ok(exe) => format!("unknown ({})", exe.display()),
        Err(error) => format!("unknown ({error})"),
    }
}

/// The machine's CPU time since boot, all cores together, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    busy: u64,
    total: u64,
}

impl CpuTimes {
    /// The machine's CPU times now, from `/proc/stat`; `None` where there is
    /// none.
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Reads the first line of `/proc/stat`: `cpu user nice system idle iowait
    /// irq softirq steal ...`. Idle and iowait are idle; guest time is counted
    /// in user already.
    fn parse(stat: &str) -> Option<Self> {
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .take(8)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        let [user, nice, system, idle, iowait, irq, softirq, steal] = ticks[..] else {
            return None;
        };
        let busy = user + nice + system + irq + softirq + steal;
        Some(Self {
            busy,
            total: busy + idle + iowait,
        })
    }

    /// The share of the machine's cores busy between `self` and `later`, from 0
    /// to 1; `None` when no time passed.
    pub fn busy_until(self, later: Self) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let busy = later.busy.checked_sub(self.busy)?;
        (total > 0).then(|| busy as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_share_counts_every_core_and_leaves_out_idle_and_iowait() {
        let before = CpuTimes::parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        let after = CpuTimes::parse("cpu  400 10 90 850 100 20 30 0 0 0\n").unwrap();
        // 300 + 10 + 40 + 20 + 30 busy ticks; 50 idle and 50 waiting for I/O.
        assert_eq!(before.busy_until(after), Some(0.8));
        assert_eq!(after.busy_until(after), None);
    }

    #[test]
    fn a_stat_without_a_cpu_line_gives_nothing() {
        assert_eq!(CpuTimes::parse("intr 1 2 3\n"), None);
        assert_eq!(CpuTimes::parse("cpu  1 2 3\n"), None);
    }
}
