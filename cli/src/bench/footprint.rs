//! Footprint: the resident memory of each service process, found by name in
//! `/proc`, sampled while the command load runs, and the stack's start-up time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

/// The service processes, by binary name.
pub const PROCESSES: [&str; 9] = [
    "inventory",
    "customers",
    "orders",
    "payments",
    "projection-worker",
    "catalog",
    "orders-view",
    "customers-view",
    "gateway",
];

/// How often resident memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// One service's memory, in MiB.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Memory {
    /// The process id read (the largest, if several processes have the name).
    pub pid: u32,
    /// The highest resident set seen while the command load ran (VmRSS samples).
    pub peak_rss_mb: f64,
    /// The kernel's high-water mark of the resident set over the process's life
    /// (VmHWM), start-up and earlier scenarios included.
    pub hwm_mb: f64,
}

/// The processes of the given names, by name: `/proc/<pid>/cmdline`'s program
/// name, so that `orders` does not match `orders-view`.
pub fn find_processes() -> BTreeMap<&'static str, Vec<u32>> {
    let mut found: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let program = cmdline.split(|byte| *byte == 0).next().unwrap_or_default();
        let program = String::from_utf8_lossy(program);
        let name = Path::new(program.as_ref())
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if let Some(known) = PROCESSES.iter().find(|known| **known == name) {
            found.entry(known).or_default().push(pid);
        }
    }
    found
}

/// A field of `/proc/<pid>/status` in kB, such as `VmRSS` or `VmHWM`.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The highest VmRSS seen per process, sampled in the background until stopped.
pub struct Sampler {
    peaks: Arc<Mutex<BTreeMap<u32, u64>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling every service process found now.
    pub fn start() -> Self {
        let pids: Vec<u32> = find_processes().into_values().flatten().collect();
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peaks, stop) = (peaks.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    for pid in &pids {
                        if let Some(rss) = status_kb(*pid, "VmRSS") {
                            let mut peaks = peaks.lock().unwrap_or_else(PoisonError::into_inner);
                            let peak = peaks.entry(*pid).or_insert(0);
                            *peak = (*peak).max(rss);
                        }
                    }
                    tokio::time::sleep(SAMPLE_EVERY).await;
                }
            }
        });
        Self { peaks, stop, task }
    }

    /// Stops sampling and returns each service's memory.
    pub async fn finish(self) -> BTreeMap<String, Memory> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let peaks = self
            .peaks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mib = |kb: u64| kb as f64 / 1024.0;
        find_processes()
            .into_iter()
            .filter_map(|(name, pids)| {
                let pid = pids
                    .into_iter()
                    .max_by_key(|pid| peaks.get(pid).copied().unwrap_or(0))?;
                let memory = Memory {
                    pid,
                    peak_rss_mb: mib(peaks.get(&pid).copied().unwrap_or(0)),
                    hwm_mb: mib(status_kb(pid, "VmHWM").unwrap_or(0)),
                };
                Some((name.to_owned(), memory))
            })
            .collect()
    }
}
