//! Load generators: closed loops of N clients that each send the next request as
//! soon as the last one answered, and open loops that start requests at a fixed
//! rate whatever the answers take. Latencies go into an HDR histogram.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

/// The longest latency a histogram records; longer ones are clamped to it.
const MAX_LATENCY_MICROS: u64 = 60_000_000;

/// What one measurement found: how many operations succeeded in how long, and
/// their latency percentiles.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Operations that succeeded inside the measured window.
    pub operations: u64,
    /// Operations that failed inside the measured window.
    pub errors: u64,
    /// The first error, to say what went wrong.
    pub first_error: Option<String>,
    /// Length of the measured window, in seconds.
    pub seconds: f64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Median latency, in milliseconds.
    pub median_ms: f64,
    /// 99th-percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Longest latency, in milliseconds.
    pub max_ms: f64,
}

/// Latencies and errors gathered by one client.
pub struct Recorder {
    histogram: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self {
            // Three significant figures up to a minute: bounds are constants.
            histogram: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
                .expect("constant histogram bounds are valid"),
            errors: 0,
            first_error: None,
        }
    }

    /// Records one operation's outcome.
    pub fn record(&mut self, outcome: Result<Duration, String>) {
        match outcome {
            Ok(latency) => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.histogram
                    .saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
            }
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    /// Adds another recorder's operations to this one.
    pub fn merge(&mut self, other: Recorder) {
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The summary of everything recorded over a window of `window`.
    pub fn summary(&self, window: Duration) -> Summary {
        let seconds = window.as_secs_f64();
        let millis = |micros: u64| micros as f64 / 1000.0;
        let operations = self.histogram.len();
        Summary {
            operations,
            errors: self.errors,
            first_error: self.first_error.clone(),
            seconds,
            throughput: if seconds > 0.0 {
                operations as f64 / seconds
            } else {
                0.0
            },
            median_ms: millis(self.histogram.value_at_quantile(0.5)),
            p99_ms: millis(self.histogram.value_at_quantile(0.99)),
            max_ms: millis(self.histogram.max()),
        }
    }
}

/// How long a load runs and how much of its start is left out as warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Time before measuring starts: connections open, caches fill.
    pub warmup: Duration,
    /// The measured time.
    pub measured: Duration,
}

impl Window {
    /// A window of `measured`, after a warm-up of a fifth of it (at most a second).
    pub fn of(measured: Duration) -> Self {
        Self {
            warmup: (measured / 5).min(Duration::from_secs(1)),
            measured,
        }
    }
}

/// Runs `clients` concurrent clients, each calling `operation` with a fresh index
/// as soon as its previous call returned, and records every call that starts after
/// the warm-up and ends inside the window.
pub async fn closed_loop<F, Fut>(clients: usize, window: Window, operation: F) -> Summary
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    closed_loop_recorded(clients, window, operation)
        .await
        .summary(window.measured)
}

/// [`closed_loop`], with what it recorded rather than its summary, so that
/// several rounds can be added up.
pub async fn closed_loop_recorded<F, Fut>(clients: usize, window: Window, operation: F) -> Recorder
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + window.warmup;
    let deadline = measure_from + window.measured;
    let mut tasks = JoinSet::new();
    for _ in 0..clients.max(1) {
        let (next, operation) = (next.clone(), operation.clone());
        tasks.spawn(async move {
            let mut recorder = Recorder::new();
            loop {
                let began = Instant::now();
                if began >= deadline {
                    break;
                }
                let outcome = operation(next.fetch_add(1, Ordering::Relaxed)).await;
                let ended = Instant::now();
                if began >= measure_from && ended <= deadline {
                    recorder.record(outcome.map(|()| ended - began));
                }
            }
            recorder
        });
    }
    let mut total = Recorder::new();
    while let Some(recorder) = tasks.join_next().await {
        if let Ok(recorder) = recorder {
            total.merge(recorder);
        }
    }
    total
}

/// Starts `operation` `rate` times a second for `duration`, each call on its own
/// task so that slow answers do not slow the rate. Each call returns the latency
/// it measured itself (a freshness or a saga time, not only its own duration).
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, operation: F) -> Summary
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<Duration, String>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    // A late tick is made up at once, so that the rate holds on average.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let mut index = 0;
    while start.elapsed() < duration {
        ticker.tick().await;
        tasks.spawn(operation(index));
        index += 1;
    }
    let mut total = Recorder::new();
    while let Some(outcome) = tasks.join_next().await {
        total.record(outcome.unwrap_or_else(|error| Err(format!("task failed: {error}"))));
    }
    total.summary(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reports_percentiles_in_milliseconds_and_counts_errors() {
        let mut recorder = Recorder::new();
        for millis in 1..=100 {
            recorder.record(Ok(Duration::from_millis(millis)));
        }
        recorder.record(Err("HTTP 500".into()));
        let summary = recorder.summary(Duration::from_secs(2));
        assert_eq!(summary.operations, 100);
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.first_error.as_deref(), Some("HTTP 500"));
        assert!((summary.throughput - 50.0).abs() < 1e-9);
        assert!((summary.median_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99_ms - 99.0).abs() < 0.1, "{summary:?}");
    }

    #[tokio::test]
    async fn a_closed_loop_counts_only_what_ends_inside_the_window() {
        let window = Window {
            warmup: Duration::from_millis(20),
            measured: Duration::from_millis(200),
        };
        let summary = closed_loop(4, window, |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await;
        assert!(summary.operations > 0);
        // Four clients sleeping 5 ms each cannot finish more than 4 * 200 / 5.
        assert!(summary.operations <= 160, "{summary:?}");
        assert!(summary.median_ms >= 5.0, "{summary:?}");
    }

    #[tokio::test]
    async fn an_open_loop_keeps_its_rate_and_records_the_reported_latency() {
        let summary = open_loop(100.0, Duration::from_millis(300), |_| async {
            Ok(Duration::from_millis(7))
        })
        .await;
        // About 30 ticks; a loaded machine bursts late ticks but keeps the count.
        assert!((10..=60).contains(&summary.operations), "{summary:?}");
        assert!((summary.p99_ms - 7.0).abs() < 0.1, "{summary:?}");
    }
}
