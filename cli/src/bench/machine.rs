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
